"""Image input/output: read and write microscopy images with their axes and pixel sizes.

Pure array code: this package never imports torch or Lightning.
"""

from microsight.io.image import SUPPORTED_EXTENSIONS, Image
from microsight.io.labels import read_labels, write_labels
from microsight.io.readers import list_images, read_image, read_images
from microsight.io.writers import ImageWriter, open_image_writer, write_image

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Image",
    "ImageWriter",
    "list_images",
    "open_image_writer",
    "read_image",
    "read_images",
    "read_labels",
    "write_image",
    "write_labels",
]
