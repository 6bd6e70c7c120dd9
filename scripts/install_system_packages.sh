#!/usr/bin/env bash
# System packages augbal uses beyond its Python dependencies (Debian).
# dataset-fashion-mnist: the real Fashion-MNIST IDX files the embedded sample data is made from
# (only needed to regenerate or verify it: datasets/augbal/sample_data/make_sample.py).
set -euo pipefail
if [ -d /usr/share/datasets/fashion-mnist ]; then
  echo "dataset-fashion-mnist already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q dataset-fashion-mnist
