"""The one image preprocessing used by training, export and evaluation.

Training (`augbal_tf.input_pipeline`) and the exported SavedModel
(`augbal_tf.export`) both call `preprocess_images`, so a served model sees
exactly the pixels the trained model saw. Each backbone names the pixel
normalisation its weights were trained with (`augbal_tf.model.preprocessing_for`):
  * "imagenet": [0, 1] pixels, ImageNet mean/std (torchvision; resnet18);
  * "lite": (pixel - 127) / 128 (the TF EfficientNet-Lite builder's MEAN_RGB/STDDEV_RGB);
  * "caffe": RGB -> BGR, minus the ImageNet BGR means on [0, 255] (keras.applications ResNet50);
  * "raw": float pixels in [0, 255] (models that normalise inside, e.g. MobileNetV3, EfficientNetB0).
"""

import tensorflow as tf

# ImageNet channel statistics (RGB, on [0, 1] pixels), as the paper's torchvision pipeline.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
NORMALIZATIONS = ("imagenet", "lite", "caffe", "raw")


def preprocess_images(uint8_images: tf.Tensor, image_size: int, normalization: str = "imagenet") -> tf.Tensor:
    """Resizes uint8 RGB images to a square model input and normalises them.

    Bilinear resize (TensorFlow's half-pixel convention, no antialiasing) to
    `image_size` x `image_size` on float pixels in [0, 255], then the backbone's
    normalisation (default: scaling to [0, 1] and ImageNet mean/std per channel).

    Args:
      uint8_images: uint8 tensor [H, W, 3] or [N, H, W, 3] (RGB).
      image_size: side length of the model input in pixels (> 0).
      normalization: one of NORMALIZATIONS (see the module docstring).

    Returns:
      float32 tensor [image_size, image_size, 3] or [N, image_size, image_size, 3].

    Raises:
      ValueError: if `image_size` is not a positive int or `normalization` is unknown.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r} is not valid; allowed: {', '.join(NORMALIZATIONS)}")
    images = tf.cast(uint8_images, tf.float32)
    images = tf.image.resize(images, (image_size, image_size), method="bilinear", antialias=False)
    if normalization == "raw":
        return images
    if normalization == "lite":
        return (images - 127.0) / 128.0
    if normalization == "caffe":
        return images[..., ::-1] - tf.constant(CAFFE_BGR_MEAN, tf.float32)
    images = images / 255.0
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return (images - mean) / std
