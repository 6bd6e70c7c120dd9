"""Numeric precision as one setting (`--precision`): what each name means and what `auto` picks.

    float32   every op in float32 (the reference).
    bfloat16  Keras' "mixed_bfloat16": variables float32, convolutions and matmuls in bfloat16.
              Same exponent range as float32, so no loss scaling. Fast on CPUs with AMX or
              AVX512-BF16 (Intel Sapphire Rapids+, AMD Zen 4+) and on GPUs of compute
              capability >= 8.0 (Ampere+); elsewhere it is emulated and slower than float32.
    float16   Keras' "mixed_float16": the GPU choice (Volta+); its 5-bit exponent underflows
              small gradients, so the loss is scaled (`needs_loss_scaling`).
    auto      bfloat16 where the hardware runs it natively, float32 otherwise.

Whatever the precision, the model's logits, the loss and BatchNorm statistics are float32
(augbal_tf/model.py says where), and the exported SavedModel serves float32 probabilities.
"""

import pathlib
from collections.abc import Sequence

PRECISIONS = ("float32", "bfloat16", "float16", "auto")
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# /proc/cpuinfo flags of native bfloat16 matrix work: AMX tiles or AVX-512 dot products.
CPU_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# bfloat16 tensor cores arrived with Ampere (sm_80).
GPU_BFLOAT16_MIN_CAPABILITY = (8, 0)
CPUINFO = pathlib.Path("/proc/cpuinfo")


def _check(name: str, allowed: Sequence[str]) -> None:
    if name not in allowed:
        raise ValueError(f"precision={name!r} is not valid; allowed: {', '.join(allowed)}")


def cpu_flags(cpuinfo_text: str | None = None) -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (or of `cpuinfo_text`); empty where it is absent."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = CPUINFO.read_text()
        except OSError:  # Not Linux: no flags to read, so no claim of bfloat16 support.
            return set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":  # Every core repeats the same line; the first is enough.
            return set(value.split())
    return set()


def cpu_supports_bfloat16(cpuinfo_text: str | None = None) -> bool:
    """True if the CPU has AMX-BF16 or AVX512-BF16 (read from /proc/cpuinfo or `cpuinfo_text`)."""
    return bool(cpu_flags(cpuinfo_text) & set(CPU_BFLOAT16_FLAGS))


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) compute capability of every GPU TensorFlow sees (empty on CPU-only hosts)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  # Only when asked: keeps parsing TF-free.

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


def _auto(gpus: Sequence[tuple[int, int]], cpuinfo_text: str | None) -> tuple[str, str]:
    if gpus:
        # Training runs on the GPUs, so their (slowest) capability decides, not the host CPU.
        if min(tuple(gpu) for gpu in gpus) >= GPU_BFLOAT16_MIN_CAPABILITY:
            return "bfloat16", f"every GPU has compute capability >= {GPU_BFLOAT16_MIN_CAPABILITY}"
        return "float32", f"a GPU has compute capability < {GPU_BFLOAT16_MIN_CAPABILITY}"
    flags = sorted(cpu_flags(cpuinfo_text) & set(CPU_BFLOAT16_FLAGS))
    if flags:
        return "bfloat16", f"CPU flags {', '.join(flags)}"
    return "float32", f"CPU has none of {', '.join(CPU_BFLOAT16_FLAGS)} and no GPU"


def resolve_precision(name: str, gpus: Sequence[tuple[int, int]] | None = None,
                      cpuinfo_text: str | None = None) -> str:
    """The concrete precision `name` stands for: `auto` decided from the hardware, others as given.

    Args:
      name: one of PRECISIONS.
      gpus: (major, minor) compute capability of each GPU; None asks TensorFlow.
      cpuinfo_text: /proc/cpuinfo contents; None reads the file.

    Returns:
      "float32", "bfloat16" or "float16".

    Raises:
      ValueError: if `name` is not in PRECISIONS.
    """
    return describe(name, gpus, cpuinfo_text)["precision"]


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of a resolved precision ("float32", "mixed_bfloat16", "mixed_float16")."""
    _check(precision, tuple(KERAS_POLICIES))  # "auto" must be resolved first.
    return KERAS_POLICIES[precision]


def needs_loss_scaling(precision: str) -> bool:
    """True only for float16, whose narrow exponent flushes small gradients to zero unless scaled."""
    _check(precision, tuple(KERAS_POLICIES))
    return precision == "float16"


def describe(name: str, gpus: Sequence[tuple[int, int]] | None = None,
             cpuinfo_text: str | None = None) -> dict:
    """The precision decision as recorded in metrics.json's environment (and logged).

    Returns:
      {"requested", "precision", "keras_policy", "loss_scaling", "reason",
       "cpu_bfloat16_flags", "gpu_compute_capabilities"}, all JSON-serialisable.

    Raises:
      ValueError: if `name` is not in PRECISIONS.
    """
    _check(name, PRECISIONS)
    if gpus is None:
        gpus = gpu_compute_capabilities()
    if name == "auto":
        precision, reason = _auto(gpus, cpuinfo_text)
        reason = f"auto: {reason}"
    else:
        precision, reason = name, "requested"
    return {"requested": name, "precision": precision, "keras_policy": KERAS_POLICIES[precision],
            "loss_scaling": needs_loss_scaling(precision), "reason": reason,
            "cpu_bfloat16_flags": sorted(cpu_flags(cpuinfo_text) & set(CPU_BFLOAT16_FLAGS)),
            "gpu_compute_capabilities": [f"{major}.{minor}" for major, minor in gpus]}
