"""Datasets for GAN training: built-in names, image folders, zips and .npz files -> ImageData -> Batcher.

data = load_images("mnist5k", resolution=32, channels=1)   # uint8 (5000, 1, 32, 32)
batches = Batcher(data, 64, device="cuda", seed=0, hflip=False)
x, y = next(batches)                                        # float (64, 1, 32, 32) in [-1, 1]
"""

from .batcher import Batcher
from .builtin import NAMED_SOURCES
from .image_data import ImageData, to_float, to_uint8
from .sources import check_images, load_images

__all__ = ["NAMED_SOURCES", "Batcher", "ImageData", "check_images", "load_images", "to_float", "to_uint8"]
