"""`TrainConfig`: every setting of one training run, validated once.

The dataset variant is one nested `VariantConfig` (`config.data`), declared in
the builder package; the training fields are declared here. Flag names equal
field names (`augbal_tf.flags` generates the data flags from the variant's
fields), except `--sampling`, the flag of the variant's `strategy`. Library
code takes a `TrainConfig`; only entry points read `FLAGS` (through `from_flags`).
"""

import dataclasses
import hashlib
import json
import math
import os
import pathlib
from typing import Any

from augbal_datasets.augbal import config as data_config

VariantConfig = data_config.VariantConfig

DISTRIBUTION_STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")
SELECTIONS = ("validation", "test")
CLASS_WEIGHTS = ("none", "balanced")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")

# Fields that do not change what a run computes: excluded from the flags hash.
UNHASHED_FIELDS = ("overwrite", "cpu_devices")
# Settings added after the first release, hashed only when they differ from this
# default: workdirs of earlier runs keep their hash (their runs had the default).
HASHED_ONLY_WHEN_SET = {"precision": "float32", "weights": "none", "bn_mode": "auto",
                        # Imbalance remedies (#13).
                        "loss": "cross_entropy", "focal_gamma": 2.0, "cb_beta": 0.9999, "cb_gamma": 0.0,
                        "la_tau": 1.0, "ldam_max_margin": 0.5, "ldam_scale": 30.0, "drw_epoch": 0,
                        "posthoc_tau": 0.0, "mix": "none", "mix_alpha": 1.0, "remix_kappa": 3.0,
                        "remix_tau": 0.5, "crt_epochs": 0, "tau_norm": False, "tau_norm_tau": None,
                        "drs_epoch": 0,
                        # Online augmentation and re-sampling (#14, #13).
                        "online_augmentation": "", "online_augmentation_params": "",
                        "online_classes": "all", "sampler": "none",
                        # Two-stage fine-tuning and the cached-feature fast path (#12).
                        "fine_tune_epoch": 0, "fine_tune_layers": 0, "fine_tune_learning_rate": 0.0,
                        "feature_cache": "auto",
                        # The variant's own late fields (imbalance_profile, #13; their flags
                        # carry the field names), declared once in the builder's config.
                        **data_config.HASHED_ONLY_WHEN_SET}
BN_MODES = ("auto", "train", "inference")
# The names of the remedies, declared here (not in the TensorFlow modules that implement
# them: augbal_tf.losses, remedies, samplers) so that validating a config, as a study's
# --report_only does, never imports TensorFlow.
LOSSES = ("cross_entropy", "focal", "class_balanced", "logit_adjusted", "balanced_softmax", "ldam")
MIX_MODES = ("none", "mixup", "remix")
SAMPLERS = ("none", "class_balanced", "square_root")
PRECISIONS = ("float32", "bfloat16", "float16", "auto")  # augbal_tf.precision resolves auto
FEATURE_CACHES = ("auto", "off")  # augbal_tf.feature_cache decides where auto applies
# ResNet downsamples by 32: smaller inputs leave no spatial extent for the last stage.
MIN_IMAGE_SIZE = 32


def data_flag_name(field: dataclasses.Field) -> str:
    """The flag of a `VariantConfig` field (its name unless the field declares an alias)."""
    return field.metadata.get("flag") or field.name


# Flag name -> VariantConfig field name, for every data flag.
DATA_FLAGS = {data_flag_name(field): field.name for field in data_config.FIELDS}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run (see `augbal_tf.flags` for their meaning)."""

    # Run.
    overwrite: bool = False
    export: bool = True
    # Where the dataset lives (not part of the variant: the same variant may sit anywhere).
    data_dir: str | None = None
    manual_dir: str | None = None
    # The dataset variant.
    data: VariantConfig = dataclasses.field(default_factory=VariantConfig)
    # Model.
    model: str = "resnet18"
    weights: str = "none"
    bn_mode: str = "auto"
    image_size: int = 224
    head_width: int = 512
    dropout: float = 0.2
    freeze_backbone: bool = False
    # Two-stage fine-tuning (#12; see augbal_tf.fine_tune).
    fine_tune_epoch: int = 0
    fine_tune_layers: int = 0
    fine_tune_learning_rate: float = 0.0
    feature_cache: str = "auto"
    # Training.
    seed: int = 0
    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 3e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    patience: int = 11
    selection: str = "validation"
    class_weight: str = "none"
    # Imbalance remedies (#13; see augbal_tf.losses and augbal_tf.remedies).
    loss: str = "cross_entropy"
    focal_gamma: float = 2.0
    cb_beta: float = 0.9999
    cb_gamma: float = 0.0
    la_tau: float = 1.0
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    drw_epoch: int = 0
    posthoc_tau: float = 0.0
    mix: str = "none"
    mix_alpha: float = 1.0
    remix_kappa: float = 3.0
    remix_tau: float = 0.5
    # Decoupled classifier remedies (Kang et al. 2020; see augbal_tf.remedies) and DRS.
    crt_epochs: int = 0
    tau_norm: bool = False
    tau_norm_tau: float | None = None  # None: chosen on the validation split (remedies.TAU_GRID).
    drs_epoch: int = 0
    # Online augmentation and re-sampling (#14, #13; see augbal_tf.input_pipeline).
    online_augmentation: str = ""
    online_augmentation_params: str = ""
    online_classes: str = "all"
    sampler: str = "none"
    cache: bool = True
    log_images: int = 16
    # Execution.
    distribution_strategy: str = "auto"
    cpu_devices: int = 0
    precision: str = "float32"
    mixed_precision: bool = False  # The old spelling of --precision=float16.
    jit_compile: bool = False
    deterministic: bool = True

    def __post_init__(self):
        _validate(self)


def _split_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(variant fields, training fields) of flat keyword arguments (flag names accepted)."""
    data, train = {}, {}
    for key, value in fields.items():
        name = DATA_FLAGS.get(key, key)
        if name in data_config.FIELD_NAMES:
            data[name] = value
        else:
            train[key] = value
    return data, train


def make(**fields: Any) -> TrainConfig:
    """A TrainConfig from flat fields: variant fields (or their flag names) go to `data`."""
    data, train = _split_fields(fields)
    return TrainConfig(data=VariantConfig(**data), **train)


def replace(config: TrainConfig, **fields: Any) -> TrainConfig:
    """`config` with flat fields replaced (variant fields routed to `data`; validated again)."""
    data, train = _split_fields(fields)
    if data:
        train["data"] = dataclasses.replace(config.data, **data)
    return dataclasses.replace(config, **train)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"--{name}={value!r} is not valid; allowed: {', '.join(allowed)}")


def _check_positive(name: str, value: Any, minimum: float = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"--{name}={value!r} is not valid; must be a number >= {minimum}")


def _validate(config: TrainConfig) -> None:
    """Checks every training field (the variant checked itself); raises ValueError naming the flag."""
    if not isinstance(config.data, VariantConfig):
        raise ValueError(f"data must be a VariantConfig, got {type(config.data).__name__}")
    _check_choice("distribution_strategy", config.distribution_strategy, DISTRIBUTION_STRATEGIES)
    _check_choice("selection", config.selection, SELECTIONS)
    _check_choice("class_weight", config.class_weight, CLASS_WEIGHTS)
    _check_choice("optimizer", config.optimizer, OPTIMIZERS)
    _check_choice("bn_mode", config.bn_mode, BN_MODES)
    _check_choice("precision", config.precision, PRECISIONS)
    _check_choice("feature_cache", config.feature_cache, FEATURE_CACHES)
    if config.mixed_precision and config.precision not in ("float32", "float16"):
        raise ValueError(f"--mixed_precision means --precision=float16 and contradicts "
                         f"--precision={config.precision}; give only --precision")
    if config.weights not in ("none", "imagenet") and not os.path.isfile(os.path.expanduser(config.weights)):
        raise ValueError(f"--weights={config.weights!r} is not valid; allowed: none, imagenet, or the path "
                         "of a Keras weights file (.weights.h5) that exists")
    if config.data.source == "manual" and not config.manual_dir:
        raise ValueError("--source=manual (the default) needs --manual_dir, the folder of your images; "
                         "use --source=sample for the embedded sample")
    for name in ("epochs", "batch_size", "head_width"):
        _check_positive(name, getattr(config, name))
    _check_positive("image_size", config.image_size, MIN_IMAGE_SIZE)
    for name in ("patience", "cpu_devices", "log_images", "seed"):
        _check_positive(name, getattr(config, name), 0)
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"--dropout={config.dropout!r} is not valid; must be in [0, 1)")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(f"--learning_rate={config.learning_rate!r} is not valid; must be > 0")
    if config.selection == "validation" and config.data.validation_per_class == 0:
        raise ValueError("--selection=validation needs a validation split, but --validation_per_class=0; "
                         "set --validation_per_class > 0 or --selection=test")
    _validate_remedies(config)
    _validate_online(config)
    _validate_fine_tune(config)
    if config.jit_compile and config.deterministic:
        raise ValueError("--jit_compile needs --nodeterministic: XLA has no deterministic MaxPool gradient, "
                         "so op determinism makes the compiled training step fail")


def _check_finite(name: str, value: Any, minimum: float, strict: bool = False, maximum: float | None = None) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > minimum if strict else value >= minimum) and (maximum is None or value < maximum))
    if not ok:
        bounds = f"{'>' if strict else '>='} {minimum}" + (f" and < {maximum}" if maximum is not None else "")
        raise ValueError(f"--{name}={value!r} is not valid; must be a finite number {bounds}")


def _validate_remedies(config: TrainConfig) -> None:
    """The loss, DRW, post-hoc and mix settings (#13); count-dependent checks run in training."""
    _check_choice("loss", config.loss, LOSSES)
    _check_choice("mix", config.mix, MIX_MODES)
    _check_finite("focal_gamma", config.focal_gamma, 0)
    _check_finite("cb_gamma", config.cb_gamma, 0)
    _check_finite("cb_beta", config.cb_beta, 0, maximum=1.0)
    if (isinstance(config.la_tau, bool) or not isinstance(config.la_tau, (int, float))
            or not math.isfinite(config.la_tau)):
        raise ValueError(f"--la_tau={config.la_tau!r} is not valid; must be a finite number")
    _check_finite("ldam_max_margin", config.ldam_max_margin, 0, strict=True)
    _check_finite("ldam_scale", config.ldam_scale, 0, strict=True)
    _check_finite("posthoc_tau", config.posthoc_tau, 0)
    _check_finite("mix_alpha", config.mix_alpha, 0, strict=True)
    _check_finite("remix_kappa", config.remix_kappa, 1)
    _check_finite("remix_tau", config.remix_tau, 0, maximum=1.0)
    if isinstance(config.drw_epoch, bool) or not isinstance(config.drw_epoch, int) or config.drw_epoch < 0:
        raise ValueError(f"--drw_epoch={config.drw_epoch!r} is not valid; must be an int >= 0 (0: off)")
    if config.drw_epoch and config.drw_epoch >= config.epochs:
        raise ValueError(f"--drw_epoch={config.drw_epoch} is not valid with --epochs={config.epochs}: the "
                         "re-weighting would never start; must be < --epochs (0: off)")
    if config.class_weight == "balanced" and (config.loss == "class_balanced" or config.drw_epoch):
        which = "--loss=class_balanced" if config.loss == "class_balanced" else f"--drw_epoch={config.drw_epoch}"
        raise ValueError(f"--class_weight=balanced with {which} weights the loss twice; use one of them")
    if config.loss == "class_balanced" and config.drw_epoch:
        raise ValueError(f"--loss=class_balanced with --drw_epoch={config.drw_epoch} weights the loss twice; "
                         "use one of them")
    if config.loss == "ldam" and config.freeze_backbone:
        raise ValueError("--loss=ldam with --freeze_backbone is not supported: LDAM's cosine (NormedDense) "
                         "head and margins are trained with the whole network (Cao et al.); use "
                         "--loss=logit_adjusted or --posthoc_tau on a frozen backbone")
    _validate_decoupled(config)
    if config.mix != "none" and config.jit_compile:
        raise ValueError(f"--mix={config.mix} cannot run with --jit_compile: XLA cannot compile the "
                         "stateless gamma sampler of the mixing weight; use --nojit_compile")


def _validate_decoupled(config: TrainConfig) -> None:
    """cRT, tau-normalisation and deferred re-sampling (#13); all fail before training."""
    for name in ("crt_epochs", "drs_epoch"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"--{name}={value!r} is not valid; must be an int >= 0 (0: off)")
    if config.tau_norm_tau is not None:
        _check_finite("tau_norm_tau", config.tau_norm_tau, 0)
        if not config.tau_norm:
            raise ValueError(f"--tau_norm_tau={config.tau_norm_tau} needs --tau_norm")
    if config.tau_norm and config.loss == "ldam":
        raise ValueError("--tau_norm with --loss=ldam does nothing: LDAM's cosine head (NormedDense) has "
                         "unit-norm class vectors already")
    if config.tau_norm and config.tau_norm_tau is None and config.data.validation_per_class == 0:
        raise ValueError("--tau_norm without --tau_norm_tau chooses tau on the validation split, but "
                         "--validation_per_class=0; set --validation_per_class > 0 or --tau_norm_tau")
    if config.drs_epoch:
        if config.sampler == "none":
            raise ValueError(f"--drs_epoch={config.drs_epoch} needs --sampler=class_balanced (or square_root): "
                             "the sampler deferred re-sampling switches to")
        if config.drs_epoch >= config.epochs:
            raise ValueError(f"--drs_epoch={config.drs_epoch} is not valid with --epochs={config.epochs}: the "
                             "re-sampling would never start; must be < --epochs (0: off)")
    if not config.crt_epochs:
        return
    if config.freeze_backbone and config.weights == "none":
        raise ValueError(f"--crt_epochs={config.crt_epochs} needs a trained backbone to freeze, but "
                         "--freeze_backbone with --weights=none keeps a random one that is never trained; "
                         "drop --freeze_backbone, or use pretrained --weights")
    if config.drw_epoch or config.class_weight != "none" or config.loss == "class_balanced":
        raise ValueError(f"--crt_epochs={config.crt_epochs} re-trains the head with class-balanced sampling; "
                         "with --drw_epoch, --class_weight=balanced or --loss=class_balanced its loss would "
                         "be re-balanced twice; use one of them")
    if config.distribution_strategy == "multi_worker":
        raise ValueError(f"--crt_epochs={config.crt_epochs} is not supported with "
                         "--distribution_strategy=multi_worker: the cRT stage starts from the best weights, "
                         "which only the chief holds")


# --- online augmentation and re-sampling (#14, #13) ---
ONLINE_CLASSES = ("all", "minority")


def online_params(config: TrainConfig) -> dict[str, Any]:
    """The parsed --online_augmentation_params (a JSON object; empty: {})."""
    text = config.online_augmentation_params
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--online_augmentation_params={text!r} is not valid JSON: {error}") from None
    if not isinstance(params, dict):
        raise ValueError(f"--online_augmentation_params={text!r} is not valid; must be a JSON object")
    return params


def online_transform(config: TrainConfig):
    """The augstatic transform of --online_augmentation (None when off).

    Raises:
      ValueError: naming --online_augmentation(_params) on an unknown name or bad parameters.
    """
    if not config.online_augmentation:
        if config.online_augmentation_params:
            raise ValueError("--online_augmentation_params is set but --online_augmentation is empty")
        return None
    import augstatic  # pylint: disable=g-import-not-at-top (OpenCV only when used)

    params = online_params(config)
    try:
        return augstatic.create(config.online_augmentation, **params)
    except (ValueError, TypeError) as error:
        raise ValueError(f"--online_augmentation={config.online_augmentation!r} with "
                         f"--online_augmentation_params={config.online_augmentation_params!r} is not "
                         f"valid: {error}") from None


def _validate_online(config: TrainConfig) -> None:
    _check_choice("online_classes", config.online_classes, ONLINE_CLASSES)
    _check_choice("sampler", config.sampler, SAMPLERS)
    if config.online_classes != "all" and not config.online_augmentation:
        raise ValueError(f"--online_classes={config.online_classes} needs --online_augmentation")
    online_transform(config)  # Built once here so that a bad name or parameter fails before training.
# --- end online augmentation and re-sampling ---


def _validate_fine_tune(config: TrainConfig) -> None:
    """The two-stage fine-tuning flags (#12); the block count of --fine_tune_layers is checked in training."""
    for name in ("fine_tune_epoch", "fine_tune_layers"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"--{name}={value!r} is not valid; must be an int >= 0 (0: off)")
    _check_finite("fine_tune_learning_rate", config.fine_tune_learning_rate, 0)
    if not config.fine_tune_epoch:
        for name in ("fine_tune_layers", "fine_tune_learning_rate"):
            if getattr(config, name):
                raise ValueError(f"--{name}={getattr(config, name)} only acts in the second stage of "
                                 "fine-tuning, but --fine_tune_epoch=0 (off); set --fine_tune_epoch=K > 0")
        return
    if config.fine_tune_epoch >= config.epochs:
        raise ValueError(f"--fine_tune_epoch={config.fine_tune_epoch} is not valid with --epochs={config.epochs}: "
                         "the backbone would never be trained; must be < --epochs (0: off)")
    if config.freeze_backbone:
        raise ValueError(f"--fine_tune_epoch={config.fine_tune_epoch} with --freeze_backbone: the first stage "
                         "already trains the head only and the second unfreezes the backbone, which "
                         "--freeze_backbone forbids; drop --freeze_backbone")


def loss_params(config: TrainConfig) -> dict[str, Any]:
    """The `losses.make_loss` parameters of --loss (from the --focal_gamma ... --ldam_scale flags)."""
    return {"cross_entropy": {}, "balanced_softmax": {},
            "focal": {"gamma": config.focal_gamma},
            "class_balanced": {"beta": config.cb_beta, "gamma": config.cb_gamma},
            "logit_adjusted": {"tau": config.la_tau},
            "ldam": {"max_margin": config.ldam_max_margin, "scale": config.ldam_scale, "scaled_logits": True},
            }[config.loss]


def requested_precision(config: TrainConfig) -> str:
    """--precision, with --mixed_precision read as its old spelling of float16."""
    return "float16" if config.mixed_precision else config.precision


def resolved_bn_mode(config: TrainConfig) -> str:
    """--bn_mode, with auto resolved: inference for pretrained weights, train for random init."""
    if config.bn_mode != "auto":
        return config.bn_mode
    return "inference" if config.weights != "none" else "train"


def model_weights(config: TrainConfig) -> str | None:
    """The `weights` argument of `model.create_model` (None for random init)."""
    return None if config.weights == "none" else os.path.expanduser(config.weights)


def workspace_dir() -> pathlib.Path:
    """`$AUGBAL_WORKSPACE` (default ~/augbal_workspace): the root of data, caches, runs and studies."""
    return pathlib.Path(os.environ.get("AUGBAL_WORKSPACE") or os.path.join("~", "augbal_workspace")).expanduser()


def default_data_dir() -> str:
    """`$AUGBAL_WORKSPACE/tfds`."""
    return str(workspace_dir() / "tfds")


# --- flags <-> fields -------------------------------------------------------------------------

def _parse_count(flag: str, text: str | None, allow_fraction: bool) -> int | float | None:
    """Parses an int count (or a fraction in (0, 1) when allowed) from a flag string."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value.is_integer() and value >= 0:
        return int(value)
    if allow_fraction and 0 < value < 1:
        return value
    allowed = "an int >= 0 or a fraction in (0, 1)" if allow_fraction else "an int >= 0"
    raise ValueError(f"--{flag}={text!r} is not valid; must be {allowed}")


def data_value_from_flag(field: dataclasses.Field, value: Any) -> Any:
    """The `VariantConfig` value of a data flag's parsed value (by the field's declared kind)."""
    kind, flag = field.metadata["kind"], data_flag_name(field)
    if kind in ("list", "names"):
        items = tuple(item.strip() for item in value or () if item.strip())
        if not items:
            return None
        # One augmentation name is a plain name; several are a policy.
        return items[0] if kind == "names" and len(items) == 1 else items
    if kind == "count":
        return _parse_count(flag, value, allow_fraction=False)
    if kind == "fraction":
        parsed = _parse_count(flag, value, allow_fraction=True)
        return 0 if parsed is None else parsed
    if kind == "json":
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"--{flag}={value!r} is not valid JSON: {error}") from None
    return value


def data_value_to_flag(field: dataclasses.Field, value: Any) -> Any:
    """The flag spelling of a `VariantConfig` value (inverse of `data_value_from_flag`)."""
    kind = field.metadata["kind"]
    if kind in ("list", "names"):
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)
    if kind == "json":
        return json.dumps(value, sort_keys=True)
    return value


def variant_from_flags(flag_values) -> VariantConfig:
    """The dataset variant of parsed absl flag values (the data flags only).

    Raises:
      ValueError: naming the field and, where it differs, its flag.
    """
    data = {field.name: data_value_from_flag(field, flag_values[data_flag_name(field)].value)
            for field in data_config.FIELDS}
    if flag_values["manual_dir"].value and not flag_values["source"].present:
        data["source"] = "manual"  # A folder of one's own images is what --manual_dir means.
    try:
        return VariantConfig(**data)
    except ValueError as error:
        # The variant names its field; say which flag that is where the names differ.
        aliases = "; ".join(f"--{flag} sets {name}" for flag, name in DATA_FLAGS.items()
                            if flag != name and name in str(error))
        raise ValueError(f"dataset flags: {error}" + (f" ({aliases})" if aliases else "")) from None


def data_dir_from_flags(flag_values) -> str:
    """--data_dir with ~ expanded (absl does not), or the workspace default."""
    return os.path.expanduser(flag_values["data_dir"].value) if flag_values["data_dir"].value else default_data_dir()


def from_flags(flag_values) -> TrainConfig:
    """Builds a validated TrainConfig from parsed absl flag values (e.g. `flags.FLAGS`).

    Raises:
      ValueError: naming the flag, its value and what is allowed.
    """
    variant = variant_from_flags(flag_values)
    values = {field.name: flag_values[field.name].value for field in dataclasses.fields(TrainConfig)
              if field.name != "data"}
    values["data_dir"] = data_dir_from_flags(flag_values)
    if values["manual_dir"]:
        values["manual_dir"] = os.path.expanduser(values["manual_dir"])
    return TrainConfig(data=variant, **values)


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Every setting as a flat JSON-able dict keyed by flag name (what run.json records)."""
    out = {}
    for field in dataclasses.fields(TrainConfig):
        if field.name == "data":
            for data_field in data_config.FIELDS:
                out[data_flag_name(data_field)] = data_value_to_flag(
                    data_field, getattr(config.data, data_field.name))
        else:
            out[field.name] = getattr(config, field.name)
    return out


def flags_hash(config: TrainConfig) -> str:
    """sha256 of the resolved flags that change what a run computes."""
    hashed = {key: value for key, value in to_dict(config).items() if key not in UNHASHED_FIELDS
              and not (key in HASHED_ONLY_WHEN_SET and value == HASHED_ONLY_WHEN_SET[key])}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


def flag_lines(config: TrainConfig, workdir: str) -> list[str]:
    """A flagfile (one `--name=value` a line) that reproduces the run."""
    lines = [f"--workdir={workdir}"]
    for key, value in to_dict(config).items():
        if value is None or key == "overwrite":
            continue  # Unset flags keep their default of None; a rerun must not wipe the run.
        if isinstance(value, bool):
            lines.append(f"--{key}" if value else f"--no{key}")
        elif isinstance(value, list):
            lines.append(f"--{key}={','.join(value)}")
        else:
            lines.append(f"--{key}={value}")
    return lines
