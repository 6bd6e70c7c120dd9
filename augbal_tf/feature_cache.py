"""The cached-feature fast path of training (#12): when it applies, and the splits as pooled features.

A backbone frozen with BatchNorm in inference mode maps each stored image to the
same pooled features in every epoch (the trainer runs it with training=False, the
Keras transfer-learning convention), so with nothing else varying the inputs per
epoch (online augmentation, batch mixing) training the head on features computed
once is the uncached run with "image -> features" precomputed: the input pipeline
keeps its order of examples (shuffle, re-sampling, batching, per-epoch seeds) over
(features, label) elements. The features go through
`augbal_tf.backbones.features.encoded_features` into `$AUGBAL_WORKSPACE/features`,
keyed by the stored image's encoded bytes (no decoding when cached), so every cell of a study that stores an image reuses them.
"""

import dataclasses
import functools
import pathlib

import numpy as np
import tensorflow as tf

from augbal_datasets.augbal import prepare
from augbal_tf import backbones
from augbal_tf import config as config_lib
from augbal_tf import model as model_lib
from augbal_tf.backbones import features as features_lib


def _decode(encoded: bytes) -> np.ndarray:
    """The pixels training sees of a stored image (the builder's decoder)."""
    return prepare.decode_image(tf.constant(encoded)).numpy()


def cache_dir() -> pathlib.Path:
    """`$AUGBAL_WORKSPACE/features` (`config.workspace_dir`)."""
    return config_lib.workspace_dir() / "features"


def fixed_backbone(config: config_lib.TrainConfig) -> bool:
    """True when the run's backbone maps an image to the same features all run long.

    A registered backbone (`augbal_tf.backbones`; ResNet18/34 have no separate feature
    extractor), frozen, with BatchNorm on its moving statistics.
    """
    return (config.model in backbones.BACKBONES and config.freeze_backbone
            and config_lib.resolved_bn_mode(config) == "inference")


def refusal(config: config_lib.TrainConfig) -> str | None:
    """Why `config` trains without cached features (None: it uses them)."""
    if config.feature_cache == "off":
        return "--feature_cache=off"
    if config.model not in backbones.BACKBONES:
        return f"--model={config.model} has no separate pooled-feature backbone"
    if not config.freeze_backbone:
        return "the backbone is trained (--nofreeze_backbone)"
    if config_lib.resolved_bn_mode(config) != "inference":
        return "the backbone's BatchNorm statistics update (--bn_mode resolves to train)"
    if config.online_augmentation:
        return f"--online_augmentation={config.online_augmentation} changes the images every epoch"
    if config.mix != "none":
        return f"--mix={config.mix} mixes the images of each batch"
    if config_lib.requested_precision(config) != "float32":
        # The cache key has no dtype: its features are float32 ones.
        return f"--precision={config_lib.requested_precision(config)} (the cache holds float32 features)"
    return None


@functools.lru_cache(maxsize=1)
def _inference_backbone(name: str, weights_source: str | None, weights_id: str | None,
                        seed: int | None) -> tuple:
    """(backbone, its traced calls by input shape): the last one built in this process.

    A study's child trains cell after cell with one backbone; building EfficientNet-Lite0 and
    loading its ImageNet weights costs ~3.4 s, tracing it ~0.9 s, on every cell that computes a
    feature otherwise. One entry: the memory of one backbone, whatever the study. `weights_id`
    (a weights file's digest) and `seed` (a random init's) are part of the key only.
    """
    return model_lib.classifier_backbone(name, weights_source, seed or 0, Extractor.bn_mode, dtype="float32"), {}


class Extractor:
    """What `features_lib.encoded_features` needs of the run's classifier, the backbone built on first use.

    The backbone is `model_lib.classifier_backbone` of the run (float32, BatchNorm in
    inference mode: the features the full model's backbone gives). It is built when
    a feature is missing from the cache (or for a random-init backbone's weights
    identity, which names its seed), so a cell whose every image is cached never
    builds nor traces it: training needs only the head (`model_lib.HeadClassifier`).
    """

    bn_mode = "inference"

    def __init__(self, config: config_lib.TrainConfig):
        self.backbone_name, self.seed = config.model, config.seed
        self.weights_source = backbones.check_weights(config_lib.model_weights(config))
        self.preprocessing = model_lib.preprocessing_for(config.model)
        self._backbone = None
        self._traced = None  # Input shape -> the backbone's traced inference call (set with the backbone).
        if self.weights_source is not None:  # Hashed once (a weights file), not per chunk of images.
            self.weights_id = features_lib.weights_identity(self.weights_source, self.seed)

    @property
    def built(self) -> bool:
        return self._backbone is not None

    @property
    def backbone(self):
        if self._backbone is None:
            # Frozen in inference mode, the backbone never changes, and its features depend on the
            # seed only through a random init's weights (drop-connect is off at inference).
            random_init = self.weights_source is None
            self._backbone, self._traced = _inference_backbone(
                self.backbone_name, self.weights_source, None if random_init else self.weights_id,
                self.seed if random_init else None)
        return self._backbone

    def features(self, inputs, training=False):
        """The backbone's pooled features of a preprocessed batch, in graph mode.

        Traced once per input size (any batch size): eagerly, Keras runs the backbone op by
        op, with BatchNorm unfused, at half the speed (EfficientNet-Lite0 at 224 px, 2 cores:
        58 images/s eager, 109 traced; benchmarks/results/feature_cache.md, run 7).
        """
        if training:
            raise ValueError("cached features come from the backbone in inference mode (training=False)")
        shape = tuple(inputs.shape[1:])
        backbone = self.backbone
        if shape not in self._traced:
            self._traced[shape] = tf.function(lambda images: backbone(images, training=False), input_signature=[
                tf.TensorSpec([None, *shape], tf.float32)])
        return self._traced[shape](inputs)


@dataclasses.dataclass
class CachedSplits:
    """Every split's pooled features and labels, in the builder's fixed order."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    counts: dict[str, int]
    backbone_built: bool = False

    def dataset(self, split: str) -> tf.data.Dataset:
        """(features, label) pairs of `split`, in the builder's fixed order (what `Variant.encoded` is for images)."""
        return tf.data.Dataset.from_tensor_slices((self.features[split], self.labels[split]))

    def record(self, directory) -> dict:
        """What metrics.json records of the cache."""
        return {"used": True, "reason": None, "dir": str(directory), "computed": self.counts["computed"],
                "read": self.counts["read"], "backbone_built": self.backbone_built}


def not_used_record(reason: str) -> dict:
    """metrics.json's record of a run without cached features."""
    return {"used": False, "reason": reason, "dir": None, "computed": 0, "read": 0, "backbone_built": None}


def split_features(model, variant, splits, image_size: int, directory) -> CachedSplits:
    """The pooled features of every example of `splits`, through the cache in `directory`.

    Args:
      model: the run's `Extractor` (or a `BackboneClassifier` with bn_mode "inference", float32).
      variant: the prepared `input_pipeline.Variant`.
      splits: split names to compute.
      image_size: model input side length.
      directory: the feature cache folder (`cache_dir()` in training).
    """
    counts = {"computed": 0, "read": 0}
    features, labels = {}, {}
    for split in splits:
        # One pass over the encoded bytes (batched: per-element iteration costs more than the
        # hashing); images are decoded only for features missing from the cache.
        encoded, split_labels = [], []
        for images, batch_labels in variant.encoded(split).batch(1024).as_numpy_iterator():
            encoded.extend(images)
            split_labels.append(batch_labels)
        features[split] = features_lib.encoded_features(model, encoded, image_size, directory, _decode,
                                                        counts=counts)
        labels[split] = np.concatenate(split_labels or [np.zeros(0, np.int64)]).astype(np.int64)
    return CachedSplits(features, labels, counts, backbone_built=getattr(model, "built", True))
