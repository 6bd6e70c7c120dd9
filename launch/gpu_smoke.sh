#!/usr/bin/env bash
# GPU smoke test: one short MirroredStrategy run over all visible GPUs, SavedModel export,
# and the evaluate command on the export, checking that it reproduces metrics.json.
#
# For a machine with NVIDIA GPUs and `pip install -e '.[gpu]'` (it cannot run on the
# CPU-only development machine). Uses the embedded sample data, so it needs no download.
# Expected duration: 1-3 minutes, most of it start-up and XLA/cuDNN autotuning.
# Expected outcome: the log line "N replica(s) in sync" with N = number of GPUs, then
# "OK: evaluate reproduces metrics.json" and exit status 0.
#
# Usage: launch/gpu_smoke.sh [OUTPUT_DIR]   (default: a fresh temporary folder)
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d -t augbal_gpu_smoke.XXXXXX)}"
gpus="$(python -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))')"
if [[ "${gpus}" -lt 1 ]]; then
  echo "error: TensorFlow sees no GPU (install with pip install -e '.[gpu]' on a GPU machine)" >&2
  exit 1
fi
# A global batch divisible by any GPU count up to 8.
batch=$((8 * 8))

data_flags=(--data_dir="${out}/tfds" --source=sample --classes=tshirt_top,pullover
            --validation_per_class=50 --test_per_class=100)

python -m augbal_tf.train "${data_flags[@]}" --workdir="${out}/run" \
  --distribution_strategy=mirrored --image_size=64 --epochs=2 --batch_size="${batch}" \
  --mixed_precision --overwrite

python -m augbal_tf.evaluate "${data_flags[@]}" --saved_model="${out}/run/export" \
  --split=test --output="${out}/evaluate_test.json"

python - "${out}" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
trained = json.loads((out / "run" / "metrics.json").read_text())
evaluated = json.loads((out / "evaluate_test.json").read_text())
print("replicas:", trained["environment"]["replicas"], "devices:", trained["environment"]["devices"])
for key in ("accuracy", "balanced_accuracy", "confusion_matrix"):
    if trained["test"][key] != evaluated[key]:
        sys.exit(f"MISMATCH in {key}: metrics.json {trained['test'][key]} vs evaluate {evaluated[key]}")
print("OK: evaluate reproduces metrics.json; outputs in", out)
PY
