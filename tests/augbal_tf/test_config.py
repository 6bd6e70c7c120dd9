"""One declaration per setting: the data flags are the VariantConfig's fields, with its defaults."""

import copy
import dataclasses

from absl import flags
import pytest

from augbal_datasets.augbal import augbal_dataset_builder
from augbal_datasets.augbal import config as data_config
from augbal_tf import config as config_lib
from augbal_tf import flags as flags_lib  # noqa: F401  (defines the flags)

# The one documented alias (DESIGN.md, "One name per idea"): the builder's field
# `strategy` is the flag --sampling.
ALIASES = {"strategy": "sampling"}
# Flags of where a variant lives, not of what it is.
LOCATION_FLAGS = {"data_dir", "manual_dir"}


def _parse(*argv):
    values = copy.deepcopy(flags.FLAGS)
    values(["prog", *argv])
    return values


def test_data_flags_are_exactly_the_variant_fields():
    expected = {ALIASES.get(name, name) for name in data_config.FIELD_NAMES}
    assert set(config_lib.DATA_FLAGS) == expected
    for name in expected:
        assert name in flags.FLAGS, name
    # No TrainConfig field duplicates a variant field.
    train_fields = {field.name for field in dataclasses.fields(config_lib.TrainConfig)}
    assert not train_fields & (set(data_config.FIELD_NAMES) | expected)


def test_flag_defaults_are_the_builder_defaults():
    config = config_lib.from_flags(_parse("--manual_dir=/somewhere"))
    assert config.data == data_config.VariantConfig(source="manual")
    builder_default = augbal_dataset_builder.AugbalConfig(source="manual").variant
    assert config.data == builder_default
    for field in data_config.FIELDS:
        flag = flags.FLAGS[config_lib.data_flag_name(field)]
        assert flag.help == field.metadata["help"]


def test_flags_round_trip_through_the_variant():
    values = _parse("--source=sample", "--classes=tshirt_top,shirt", "--minority=shirt", "--imbalance_ratio=20",
                    "--sampling=oversample_augment", "--augmentation=horizontal_flip", "--validation_per_class=50",
                    "--test_per_class=100", "--augmentation_params={\"p\": 0.5}")
    config = config_lib.from_flags(values)
    assert config.data == data_config.VariantConfig(
        source="sample", classes=("tshirt_top", "shirt"), minority="shirt", imbalance_ratio=20.0,
        strategy="oversample_augment", augmentation="HorizontalFlip", augmentation_params={"p": 0.5},
        validation_per_class=50, test_per_class=100)
    lines = config_lib.flag_lines(config, "/w")
    again = config_lib.from_flags(_parse(*[line for line in lines if not line.startswith("--workdir")]))
    assert again == config and config_lib.flags_hash(again) == config_lib.flags_hash(config)


def test_several_augmentations_are_a_policy():
    config = config_lib.from_flags(_parse("--source=sample", "--sampling=oversample_augment",
                                          "--augmentation=HorizontalFlip,GaussNoise"))
    assert config.data.augmentation == ("HorizontalFlip", "GaussNoise")


def test_manual_dir_without_source_means_manual_and_sample_must_be_asked_for():
    assert config_lib.from_flags(_parse("--manual_dir=/my/photos")).data.source == "manual"
    assert config_lib.from_flags(_parse("--manual_dir=/my/photos", "--source=sample")).data.source == "sample"
    with pytest.raises(ValueError, match="--source=manual \\(the default\\) needs --manual_dir"):
        config_lib.from_flags(_parse())


@pytest.mark.parametrize("argv, message", [
    (["--classes=tshirt_top"], r"dataset flags: classes needs at least 2 classes"),
    (["--sampling=smote"], r"strategy must be one of .*got 'smote' \(--sampling sets strategy\)"),
    (["--validation_per_class=abc"], r"--validation_per_class='abc' is not valid"),
    (["--augmentation_params={bad"], r"--augmentation_params='\{bad' is not valid JSON"),
    (["--imbalance_ratio=0.5"], r"imbalance_ratio must be >= 1"),
])
def test_bad_data_flags_fail_when_parsed(argv, message):
    with pytest.raises(ValueError, match=message):
        config_lib.from_flags(_parse("--source=sample", *argv))


def test_replace_routes_variant_fields():
    config = config_lib.make(source="sample", epochs=3)
    changed = config_lib.replace(config, sampling="balanced", epochs=4)
    assert changed.data.strategy == "balanced" and changed.epochs == 4 and config.data.strategy == "unbalanced"


def test_imbalance_profile_keeps_the_run_hashes_of_earlier_runs():
    # Golden: flags_hash and variant name of the sample run before --imbalance_profile existed.
    before = config_lib.make(source="sample")
    assert config_lib.flags_hash(before) == "3abebff6d217d0b846fd060b41200df08256f7efefeb8e6ddeef1f81010cbe87"
    assert before.data.name == "sample-unbalanced-1089ce684d"
    assert config_lib.flags_hash(config_lib.replace(before, imbalance_profile="step")) == config_lib.flags_hash(before)
    long_tail = config_lib.make(source="fashion_mnist", imbalance_profile="exponential", imbalance_ratio=100)
    assert long_tail.data.imbalance_profile == "exponential"
    assert config_lib.flags_hash(long_tail) != config_lib.flags_hash(config_lib.replace(long_tail, imbalance_profile="step"))
    values = _parse("--source=fashion_mnist", "--imbalance_profile=exponential", "--imbalance_ratio=100")
    parsed = config_lib.from_flags(values)
    assert parsed.data == long_tail.data
    lines = config_lib.flag_lines(parsed, "/w")
    assert "--imbalance_profile=exponential" in lines
    again = config_lib.from_flags(_parse(*[line for line in lines if not line.startswith("--workdir")]))
    assert again == parsed and config_lib.flags_hash(again) == config_lib.flags_hash(parsed)
