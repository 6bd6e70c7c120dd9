#!/usr/bin/env bash
# Two-worker MultiWorkerMirroredStrategy training on this machine (127.0.0.1 only), the
# same way a real cluster runs it: one `python -m augbal_tf.train` process per task, each
# with its own TF_CONFIG, all with the same flags and the same --workdir / --data_dir.
# Worker 0 is the chief: it alone writes TensorBoard logs, the best weights, the export and
# metrics.json; each worker keeps its resume snapshots in workdir/backup/worker_<i>.
#
# Default run: the embedded sample data (no download), 2 classes, 32 px, 2 epochs.
# Measured here (2 shared CPU cores): 2 min 8 s, most of it start-up, graph
# building and collective set-up; a real run amortises that over its epochs.
# Expected outcome: both workers log "2 replica(s) in sync", worker 0 logs "Finished: ...",
# and OUTPUT_DIR/run/metrics.json exists with "replicas": 2.
#
# Usage: launch/multi_worker_example.sh [OUTPUT_DIR] [extra train flags, e.g. --flagfile=F]
# Kill one worker mid-run and rerun the script with the same OUTPUT_DIR: both workers
# resume from the latest epoch that every worker has a snapshot of.
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d -t augbal_multi_worker.XXXXXX)}"
shift || true
mkdir -p "${out}"

flags=(--data_dir="${out}/tfds" --workdir="${out}/run" --source=sample --classes=tshirt_top,pullover
       --train_per_class=64 --validation_per_class=16 --test_per_class=32 --image_size=32
       --epochs=2 --batch_size=16 "$@" --distribution_strategy=multi_worker)

# Prepare the dataset variant once, before any worker starts: workers sharing a data_dir
# must not race to build it.
python - "${flags[@]}" <<'PY'
import sys
from absl import flags
from augbal_datasets.augbal import prepare
from augbal_tf import config as config_lib
from augbal_tf import flags as _  # Defines the training flags.
flags.FLAGS(["prepare", *sys.argv[1:]])
config = config_lib.from_flags(flags.FLAGS)
builder = prepare.prepare_variant(config.data, config.data_dir, config.manual_dir)
print("dataset variant ready:", builder.info.config_name)
PY

read -r -a ports <<< "$(python -c 'from augbal_tf import multi_worker; print(*multi_worker.free_loopback_ports(2))')"
workers=("127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}")
pids=()
# Stop every worker when the script ends (a worker left alone waits forever for its peer).
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for index in 0 1; do
  tf_config="$(python -c 'import sys; from augbal_tf import multi_worker
print(multi_worker.tf_config(sys.argv[1:], '"${index}"'))' "${workers[@]}")"
  TF_CONFIG="${tf_config}" python -m augbal_tf.train "${flags[@]}" > "${out}/worker_${index}.log" 2>&1 &
  pids+=($!)
  echo "worker ${index}: TF_CONFIG=${tf_config} (log: ${out}/worker_${index}.log)"
done

# A worker that fails leaves its peer blocked in a collective op: stop the rest then.
# (wait's stderr is dropped: it reports "no such job" for the worker already reaped.)
status=0
for _ in 0 1; do
  if ! wait -n "${pids[@]}" 2>/dev/null; then
    status=1
    echo "a worker failed; stopping the other (see ${out}/worker_*.log)" >&2
    break
  fi
done
if [[ "${status}" -ne 0 ]]; then
  exit "${status}"
fi
grep -h "replica(s) in sync\|Finished:" "${out}"/worker_*.log || true
echo "OK: metrics in ${out}/run/metrics.json"
