#!/usr/bin/env bash
# System packages augbal uses beyond its Python dependencies (Debian).
# dataset-fashion-mnist: the real Fashion-MNIST IDX files: the builder's source=fashion_mnist
# (launch/fashion_mnist_lt/) and what the embedded sample data is made from
# (datasets/augbal/sample_data/make_sample.py).
# chromium: the headless browser the report.html test renders the study report in
# (tests/augbal_tf/test_report_html.py skips without it).
# Idempotent: a package already present is not installed again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
if [ -d /usr/share/datasets/fashion-mnist ]; then
  echo "dataset-fashion-mnist already installed"
else
  missing+=(dataset-fashion-mnist)
fi
if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed"
else
  missing+=(chromium)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
