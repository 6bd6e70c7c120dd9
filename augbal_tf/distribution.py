"""The one place where devices are configured and the tf.distribute strategy is built."""

import json
import os

from absl import logging
import tensorflow as tf


def configure_cpu_devices(count: int) -> None:
    """Splits the CPU into `count` logical devices (0: leave as is).

    TensorFlow allows this only before it initialises its devices, so it can
    happen once per process; asking again for the same split is a no-op.

    Raises:
      ValueError: if the devices are already initialised with a different split.
    """
    if count == 0:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu) or []
    if len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing == count:
            return  # Already initialised with this many devices (e.g. 1: no split).
        raise ValueError(f"--cpu_devices={count} cannot be applied: TensorFlow already initialised this "
                         f"process with {existing} logical CPU device(s); run with that value or in a "
                         f"new process") from error


# MirroredStrategy per device list, built once per process: every new MirroredStrategy numbers its
# collective ops from the same group and instance keys, and the runtime keeps the first tensor
# shape seen under a key, so a second run in the process (a study child's next cell) whose
# gradients differ in size (another head, cRT's head-only step) fails with "Shape mismatch in the
# collective instance". One strategy keeps allocating fresh keys.
_MIRRORED: dict[tuple[str, ...], tf.distribute.MirroredStrategy] = {}


def _mirrored(devices: list) -> tf.distribute.MirroredStrategy:
    """This process's MirroredStrategy over `devices` (logical devices), built at the first call."""
    names = tuple(device.name for device in devices)
    if names not in _MIRRORED:
        _MIRRORED[names] = tf.distribute.MirroredStrategy(list(names))
    return _MIRRORED[names]


def _cluster_tasks() -> int:
    """Number of tasks in TF_CONFIG's cluster (0 without TF_CONFIG)."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return sum(len(tasks) for tasks in cluster.values())


def create_strategy(name: str, jit_compile: bool = False) -> tf.distribute.Strategy:
    """Builds the strategy named by --distribution_strategy.

    Args:
      name: `auto` (MirroredStrategy over all GPUs if any, else the default
        strategy), `mirrored` (all GPUs, else all logical CPU devices),
        `multi_worker` (MultiWorkerMirroredStrategy from TF_CONFIG) or
        `one_device` (the first GPU, else the CPU).
      jit_compile: whether the training step will be XLA-compiled.

    Raises:
      ValueError: on an unknown name, multi_worker without TF_CONFIG, another
        strategy with a TF_CONFIG of several tasks, or XLA with MirroredStrategy
        over CPU devices (TensorFlow crashes on it).
    """
    if name == "multi_worker":
        # Before anything lists logical devices: collective ops must be configured
        # before TensorFlow initialises its runtime.
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--distribution_strategy=multi_worker needs the TF_CONFIG environment "
                             "variable (cluster and task of this process)")
        if jit_compile and not tf.config.list_physical_devices("GPU"):
            raise ValueError("--jit_compile with --distribution_strategy=multi_worker over CPU devices "
                             "is not supported; drop --jit_compile")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logging.info("Distribution strategy multi_worker (MultiWorkerMirroredStrategy): %d replica(s) in "
                     "sync; this task's devices: %s", strategy.num_replicas_in_sync,
                     ", ".join(device_names(strategy)))
        return strategy
    tasks = _cluster_tasks()
    if tasks > 1 and name in ("auto", "mirrored", "one_device"):
        # Each task would otherwise train its own full run into the same workdir.
        raise ValueError(f"--distribution_strategy={name} but TF_CONFIG describes a cluster of {tasks} "
                         f"tasks; use --distribution_strategy=multi_worker, or unset TF_CONFIG")
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        strategy = _mirrored(gpus) if gpus else tf.distribute.get_strategy()
    elif name == "mirrored":
        if jit_compile and not gpus:
            raise ValueError("--jit_compile with --distribution_strategy=mirrored over CPU devices is not "
                             "supported (XLA crashes on MirroredStrategy over logical CPUs); drop "
                             "--jit_compile or use --distribution_strategy=one_device")
        strategy = _mirrored(gpus or cpus)
    elif name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy((gpus or cpus)[0].name)
    else:
        raise ValueError(f"--distribution_strategy={name!r} is not valid; allowed: auto, mirrored, "
                         f"multi_worker, one_device")
    logging.info("Distribution strategy %s (%s): %d replica(s) in sync on %s", name,
                 type(strategy).__name__, strategy.num_replicas_in_sync, ", ".join(device_names(strategy)))
    return strategy


def replica_batch_size(global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Per-replica batch size; raises ValueError when the global batch does not divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(f"--batch_size={global_batch_size} is not divisible by the {replicas} replicas "
                         f"of the distribution strategy; use a multiple of {replicas}")
    return global_batch_size // replicas


def task_info(strategy: tf.distribute.Strategy) -> tuple[int, bool]:
    """(task index, is_chief) of this process; (0, True) outside multi-worker training."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, True
    tf_config = json.loads(os.environ["TF_CONFIG"])
    task = tf_config.get("task", {})
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    # Without a "chief" task, worker 0 is the chief (TensorFlow's convention).
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and
                                        "chief" not in tf_config.get("cluster", {}))
    if task_type == "worker" and "chief" in tf_config.get("cluster", {}):
        index += 1  # Backup folders: worker_0 is the chief's.
    return index, is_chief


def device_names(strategy: tf.distribute.Strategy) -> list[str]:
    """Devices the strategy trains on (for logs and metrics.json)."""
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        # The default strategy places ops on the first GPU if any, else the CPU.
        return [(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[0].name]
    return list(strategy.extended.worker_devices)
