"""augstatic: fast, seeded image augmentations in numpy and OpenCV.

Image contract (every transform): an image is a numpy array of shape HxWx3 (RGB) and dtype
uint8; grayscale HxW and HxWx1 and float32 images with values in [0, 1] are also accepted.
A transform returns a NEW array of the same shape and dtype (Transpose swaps height and width,
RandomResizedCrop returns its `size`) and never modifies its input. Anything else (other
dtypes, 4 channels, empty arrays, non-finite or out-of-range floats) raises ValueError.
Colour-only transforms treat grayscale as RGB with equal channels and return grayscale.
Tone transforms defined by 8-bit lookup tables quantise float32 input to 8 bits.

Randomness: `transform(image, rng)` takes a `numpy.random.Generator` (used as is: pass one and
reuse it), an int seed, or None (fresh entropy). The same seed gives the same output.

    import augstatic
    flip = augstatic.create("horizontal_flip")       # names are case/underscore-insensitive
    out = flip(image, rng=np.random.default_rng(0))

Policies (torchvision v2's tables and ops): `create("RandAugment")`, `create("TrivialAugmentWide")`,
`create("AugMix")`, see augstatic.policies.
"""

from augstatic import transforms as _transforms  # noqa: F401  (registers every transform)
from augstatic import policies as _policies  # noqa: F401  (registers the policies)
from augstatic.compose import Compose, OneOf, SomeOf
from augstatic.core import Transform
from augstatic.registry import available, create, lookup

# The 33 augmentations of the paper, in PAPER.md order.
PAPER_TRANSFORMS = (
    "Blur", "CLAHE", "ChannelDropout", "ChannelShuffle", "ColorJitter", "Downscale", "Emboss",
    "FancyPCA", "GaussNoise", "GaussianBlur", "GlassBlur", "HueSaturationValue", "ISONoise",
    "InvertImg", "MedianBlur", "MotionBlur", "MultiplicativeNoise", "Posterize", "RGBShift",
    "Sharpen", "Solarize", "Superpixels", "ToGray", "ToSepia", "VerticalFlip", "HorizontalFlip",
    "Transpose", "OpticalDistortion", "GridDistortion", "JpegCompression", "Cutout",
    "CoarseDropout", "GridDropout",
)

__all__ = ["PAPER_TRANSFORMS", "Compose", "OneOf", "SomeOf", "Transform", "available", "create",
           "lookup"]
