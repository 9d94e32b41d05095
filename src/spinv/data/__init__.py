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

__all__ = [
    "DatasetInfo",
    "list_datasets",
    "load_complex_sample",
    "load_dataset",
    "provenance",
    "split_indices",
]
