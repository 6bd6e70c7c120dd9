"""augbal: balanced, unbalanced and augmented-balanced image classification variants.

Thin tfds builder: the work lives in sibling modules, imported by their installed
name (`augbal_datasets.augbal.*`) because `tfds build datasets/augbal` loads this
file by path as package `augbal`, and Beam workers must import the same code.
"""

import numpy as np
import tensorflow_datasets as tfds

from augbal_datasets.augbal import builder_config
from augbal_datasets.augbal import generate
from augbal_datasets.augbal import sampling
from augbal_datasets.augbal import sources

AugbalConfig = builder_config.AugbalConfig


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for augbal variants (see README.md)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: sources, sampling plan, strategies, Beam path."}
    BUILDER_CONFIGS = builder_config.PREDEFINED
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Only for `source: manual`. Point --manual_dir (or prepare_variant(manual_dir=))
    at a folder in one of these layouts:
      seg_train/seg_train/<class>/*.jpg + seg_test/seg_test/<class>/*.jpg  (Intel Scene archive)
      train/<class>/* + test/<class>/*                                     (split folders)
      <class>/*                                 (single folder; a seeded test split is carved)
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
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.store_size
        classes = self.builder_config.classes
        # Without `classes` the names are known only after listing the source; they are
        # set in _split_generators, before any example is encoded.
        label = tfds.features.ClassLabel(names=classes) if classes else tfds.features.ClassLabel()
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
        super()._download_and_prepare(dl_manager, download_config)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config.as_dict()
        manual_dir = None
        if config["source"] == "manual":
            try:
                manual_dir = dl_manager.manual_dir
            except AssertionError as error:
                raise ValueError(f"source 'manual' needs --manual_dir / manual_dir=: {error}") from None
        source = sources.open_source(config["source"], manual_dir, data_dir=str(self.data_dir_root))
        classes, scan = generate.scan(source, config["classes"], config["skip_corrupt"],
                                      config["store_size"], self._num_workers)
        self.info.features["label"].names = classes
        plan = sampling.make_plan(scan.pools, source.has_test_pool, config)
        self.info.metadata.update({
            "config": config,
            "config_name": self.builder_config.name,
            "layout": scan.layout,
            "skipped": scan.skipped,
            **plan.summary(),
        })
        materializer = generate.Materializer(config, source, scan.info)
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
