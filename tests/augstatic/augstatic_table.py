"""The one table of every transform with valid parameters, shared by the augstatic tests.

Each row: (id, name, params, random). `random` marks transforms whose output depends on the
generator (different seeds must be able to give different outputs).
"""

TABLE = [
    # The 33 paper transforms with the paper's parameters (the defaults).
    ("Blur", "Blur", {}, True),
    ("CLAHE", "CLAHE", {}, True),
    ("ChannelDropout", "ChannelDropout", {}, True),
    ("ChannelShuffle", "ChannelShuffle", {}, True),
    ("ColorJitter", "ColorJitter", {}, True),
    ("Downscale", "Downscale", {}, False),
    ("Emboss", "Emboss", {}, True),
    ("FancyPCA", "FancyPCA", {}, True),
    ("GaussNoise", "GaussNoise", {}, True),
    ("GaussianBlur", "GaussianBlur", {}, True),
    ("GlassBlur", "GlassBlur", {}, True),
    ("HueSaturationValue", "HueSaturationValue", {}, True),
    ("ISONoise", "ISONoise", {}, True),
    ("InvertImg", "InvertImg", {}, False),
    ("MedianBlur", "MedianBlur", {}, True),
    ("MotionBlur", "MotionBlur", {}, True),
    ("MultiplicativeNoise", "MultiplicativeNoise", {}, True),
    ("Posterize", "Posterize", {}, False),
    ("RGBShift", "RGBShift", {}, True),
    ("Sharpen", "Sharpen", {}, True),
    ("Solarize", "Solarize", {}, False),
    ("Superpixels", "Superpixels", {}, True),
    ("ToGray", "ToGray", {}, False),
    ("ToSepia", "ToSepia", {}, False),
    ("VerticalFlip", "VerticalFlip", {}, False),
    ("HorizontalFlip", "HorizontalFlip", {}, False),
    ("Transpose", "Transpose", {}, False),
    ("OpticalDistortion", "OpticalDistortion", {}, True),
    ("GridDistortion", "GridDistortion", {}, True),
    ("JpegCompression", "JpegCompression", {}, True),
    ("Cutout", "Cutout", {}, True),
    ("CoarseDropout", "CoarseDropout", {}, True),
    ("GridDropout", "GridDropout", {}, True),
    # The extras users expect.
    ("Rotate", "Rotate", {}, True),
    ("RandomResizedCrop", "RandomResizedCrop", {}, True),
    ("RandomResizedCrop-size", "RandomResizedCrop", {"size": (24, 40)}, True),
    ("Equalize", "Equalize", {}, False),
    ("ElasticTransform", "ElasticTransform", {"alpha": 30.0, "sigma": 4.0}, True),
    # Non-default variants that take other code paths.
    ("GaussNoise-shared", "GaussNoise", {"per_channel": False, "mean": 3.0}, True),
    ("GaussianBlur-sigma", "GaussianBlur", {"sigma_limit": (0.5, 2.0)}, True),
    ("MultiplicativeNoise-elementwise", "MultiplicativeNoise",
     {"per_channel": True, "elementwise": True}, True),
    ("MultiplicativeNoise-per_channel", "MultiplicativeNoise", {"per_channel": True}, True),
    ("GridDropout-unit", "GridDropout", {"unit_size_range": (2, 6), "random_offset": False}, True),
    ("Superpixels-full", "Superpixels", {"p_replace": 0.5, "n_segments": (10, 30),
                                         "max_size": None}, True),
    ("HorizontalFlip-p0.5", "HorizontalFlip", {"p": 0.5}, True),
    ("Rotate-constant", "Rotate", {"limit": 30, "border_mode": "constant", "fill": 7}, True),
    # The ops of the torchvision policies (augstatic.transforms.policy_ops) and the policies.
    ("Identity", "Identity", {}, False),
    ("ShearX", "ShearX", {}, True),
    ("ShearY", "ShearY", {}, True),
    ("TranslateX", "TranslateX", {}, True),
    ("TranslateY", "TranslateY", {}, True),
    ("Brightness", "Brightness", {}, True),
    ("Color", "Color", {}, True),
    ("Contrast", "Contrast", {}, True),
    ("Sharpness", "Sharpness", {}, True),
    ("AutoContrast", "AutoContrast", {}, False),
    ("ShearX-linear-fill", "ShearX", {"magnitude_range": (0.1, 0.5), "interpolation": "linear",
                                      "fill": 128}, True),
    ("RandAugment", "RandAugment", {}, True),
    ("RandAugment-linear", "RandAugment", {"num_ops": 3, "magnitude": 20,
                                           "interpolation": "linear"}, True),
    ("TrivialAugmentWide", "TrivialAugmentWide", {}, True),
    ("AugMix", "AugMix", {}, True),
    ("AugMix-partial", "AugMix", {"severity": 10, "chain_depth": 2, "all_ops": False,
                                  "alpha": 0.5, "interpolation": "nearest"}, True),
]


def expected_shape(name: str, params: dict, shape: tuple) -> tuple:
    """Output shape of transform `name` for an input of `shape`."""
    if name == "Transpose":
        return (shape[1], shape[0]) + shape[2:]
    if name == "RandomResizedCrop" and params.get("size"):
        return tuple(params["size"]) + shape[2:]
    return shape
