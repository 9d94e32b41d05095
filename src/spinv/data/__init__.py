"""spinv.data: bundled real datasets, phantoms, loaders for users' files, transforms.

>>> from spinv.data import load_dataset
>>> load_dataset("brain-t1", split="test").shape
(22, 224, 224)
"""

from spinv.data.datasets import (
    DatasetInfo,
    list_datasets,
    load_complex_sample,
    load_dataset,
    provenance,
    split_indices,
)
from spinv.data.io import load_images, save_image
from spinv.data.phantoms import random_ellipses, shepp_logan
from spinv.data.transforms import body_mask_ct, random_rotation, roi_mask_mri, rotate

__all__ = [
    "DatasetInfo",
    "body_mask_ct",
    "list_datasets",
    "load_complex_sample",
    "load_dataset",
    "load_images",
    "provenance",
    "random_ellipses",
    "random_rotation",
    "roi_mask_mri",
    "rotate",
    "save_image",
    "shepp_logan",
    "split_indices",
]
