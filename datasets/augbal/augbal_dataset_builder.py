"""augbal: balanced, unbalanced and augmented-balanced image classification variants.

Thin tfds builder: the work lives in sibling modules, imported by their installed
name (`augbal_datasets.augbal.*`) because `tfds build datasets/augbal` loads this
file by path as package `augbal`, and Beam workers must import the same code.
"""

from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import generate
from augbal_datasets.augbal import sampling
from augbal_datasets.augbal import sources


class AugbalConfig(tfds.core.BuilderConfig):
    """The tfds BuilderConfig of one variant: a thin wrapper around a `VariantConfig`.

    `tfds build datasets/augbal --config='{json}'` calls `AugbalConfig(**json)`; the
    fields are those of `config.VariantConfig` (validated there, before any build) and
    the name is the variant's (readable prefix + hash) unless given.
    """

    def __init__(self, *, name: str = "", description: str | None = None,
                 variant: config_lib.VariantConfig | None = None, **fields: Any):
        if variant is None:
            unknown = sorted(set(fields) - set(config_lib.FIELD_NAMES))
            if unknown:
                # A TypeError, as a dataclass would raise, but naming what is allowed.
                raise TypeError(f"unknown augbal config field(s) {unknown}; allowed: "
                                f"{sorted(config_lib.FIELD_NAMES)}")
            variant = config_lib.VariantConfig(**fields)
        elif fields:
            raise TypeError(f"give either variant= or config fields, not both: {sorted(fields)}")
        super().__init__(name=name or variant.name,
                         description=description or f"augbal variant {variant.canonical_json}")
        self.variant = variant


# Kept small on purpose: `tfds build datasets/augbal` without --config builds all of
# them. Both use the embedded sample, so they build offline in seconds.
PREDEFINED = [
    AugbalConfig(name="sample", source="sample",
                 description="The embedded Fashion-MNIST sample with its natural (equal) counts."),
    AugbalConfig(name="sample_r4_horizontalflip", source="sample", minority="shirt",
                 imbalance_ratio=4, strategy="oversample_augment", augmentation="HorizontalFlip",
                 description="Sample, shirt cut to 1:4 and topped up with horizontal flips."),
]


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for augbal variants (see README.md)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: sources, sampling plan, strategies, Beam path."}
    BUILDER_CONFIGS = PREDEFINED
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    For `source: manual`. Point --manual_dir (or prepare_variant(manual_dir=))
    at a folder in one of these layouts:
      seg_train/seg_train/<class>/*.jpg + seg_test/seg_test/<class>/*.jpg  (Intel Scene archive)
      train/<class>/* + test/<class>/*                                     (split folders)
      <class>/*                                 (single folder; a seeded test split is carved)
    For `source: fashion_mnist`, --manual_dir optionally overrides the folder of the four
    Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist, Debian's
    dataset-fashion-mnist).
    """

    def __init__(self, *, num_workers: int | None = None, **kwargs):
        """Creates the builder.

        Args:
          num_workers: threads that decode, augment and encode (None: automatic,
            1: all in the calling thread). Never changes the examples.
          **kwargs: tfds DatasetBuilder arguments (config, data_dir, ...).
        """
        self._num_workers = num_workers
        self._use_beam = False
        self._manual_dir_given = None
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.variant.store_size
        classes = self.builder_config.variant.classes
        # Without `classes` the names are known only after listing the source; they are
        # set in _split_generators, before any example is encoded.
        label = tfds.features.ClassLabel(names=list(classes)) if classes else tfds.features.ClassLabel()
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), dtype=np.uint8),
                "label": label,
                "source_id": tfds.features.Text(),
                "augmentation": tfds.features.Text(),
                "augmentation_params": tfds.features.Text(),
                "generated": tfds.features.Scalar(dtype=np.bool_),
            }),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(),
        )

    def _download_and_prepare(self, dl_manager, download_config=None):
        # tfds keeps the Beam request in the download config only: remember it here.
        self._use_beam = bool(download_config and (download_config.beam_options is not None
                                                    or download_config.beam_runner is not None))
        # Whether a manual_dir was given at all (dl_manager.manual_dir defaults to a folder
        # under data_dir): fashion_mnist falls back to Debian's folder without one.
        self._manual_dir_given = download_config.manual_dir if download_config else None
        super()._download_and_prepare(dl_manager, download_config)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        variant = self.builder_config.variant
        config = variant.as_dict()
        manual_dir = None
        if variant.source == "manual":
            try:
                manual_dir = dl_manager.manual_dir
            except AssertionError as error:
                raise ValueError(f"source 'manual' needs --manual_dir / manual_dir=: {error}") from None
        elif variant.source == "fashion_mnist":
            manual_dir = self._manual_dir_given
        source = sources.open_source(variant.source, manual_dir, data_dir=str(self.data_dir_root))
        classes, scan = generate.scan(source, config["classes"], variant.skip_corrupt,
                                      variant.store_size, self._num_workers)
        self.info.features["label"].names = classes
        plan = sampling.make_plan(scan.pools, source.has_test_pool, variant)
        self.info.metadata.update({
            "config": config,
            "config_name": self.builder_config.name,
            "layout": scan.layout,
            "skipped": scan.skipped,
            **plan.summary(),
        })
        materializer = generate.Materializer(variant, source, scan.info)
        out = {}
        for split in sampling.SPLITS:
            if not plan.splits[split]:
                continue  # only validation can be empty (validation_per_class=0)
            groups = generate.group_by_source(plan.splits[split])
            if self._use_beam:
                from augbal_datasets.augbal import beam_generate  # pylint: disable=import-outside-toplevel
                out[split] = beam_generate.GenerateExamples(materializer, groups)
            else:
                out[split] = generate.iter_examples(materializer, groups, split, self._num_workers)
        return out

    def _generate_examples(self, **kwargs):
        # Never called: _split_generators returns the generators (or Beam PTransforms).
        raise NotImplementedError
