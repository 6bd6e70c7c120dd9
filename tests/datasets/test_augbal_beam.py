"""The Beam path through the `tfds build` command gives the single-process examples."""

import pytest
import tensorflow_datasets as tfds

import augbal_helpers
from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import prepare

DUMMY = augbal_helpers.REPO_ROOT / "datasets" / "augbal" / "dummy_data" / "intel_layout"
# Offline and parallel: Beam 2.77's default DirectRunner first tries to download Prism.
BEAM_OPTIONS = "runner=FnApiRunner,direct_num_workers=2,direct_running_mode=multi_processing"


@pytest.mark.slow
def test_beam_build_matches_single_process_build(tmp_path):
    config = dict(minority="sea", imbalance_ratio=8, validation_per_class=2, test_per_class=4,
                  strategy="oversample_augment", augmentation=["GaussNoise", "HorizontalFlip"],
                  compound=True)
    name = config_lib.VariantConfig.from_dict(config).name
    augbal_helpers.run_tfds_build(config, tmp_path / "beam", DUMMY,
                                  extra=[f"--beam_pipeline_options={BEAM_OPTIONS}"])
    augbal_helpers.run_tfds_build(config, tmp_path / "single", DUMMY)
    beam = tfds.builder_from_directory(augbal_helpers.variant_dir(tmp_path / "beam", name))
    single = tfds.builder_from_directory(augbal_helpers.variant_dir(tmp_path / "single", name))
    assert beam.info.metadata == single.info.metadata
    beam_content = augbal_helpers.content(beam)
    assert beam_content == augbal_helpers.content(single)
    assert sum(row[4] for row in beam_content["train"]) == beam.info.metadata["generated"] == 25
