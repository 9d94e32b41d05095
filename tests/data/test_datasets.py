"""Bundled datasets: shapes, ranges, dtypes, disjoint deterministic splits, provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinv.data import list_datasets, load_complex_sample, load_dataset, provenance, split_indices
from spinv.data.datasets import BUNDLED

EXPECTED = {
    "ct-head": ((100, 256, 256), {"train": 60, "val": 20, "test": 14}),
    "brain-t1": ((140, 224, 224), {"train": 84, "val": 28, "test": 22}),
    "natural": ((18, 256, 256), {"train": 11, "val": 3, "test": 4}),
    "brain-complex": ((1, 217, 181), {"train": 0, "val": 0, "test": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_range_dtype(name):
    shape, sizes = EXPECTED[name]
    x = load_dataset(name)
    assert x.shape == shape and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() > 0.5  # not an empty or wrongly scaled array
    for split, n in sizes.items():
        part = load_dataset(name, split=split)
        assert part.shape == (n, *shape[1:]) and part.dtype == np.float32


@pytest.mark.parametrize("name", ["ct-head", "brain-t1", "natural"])
def test_splits_disjoint_deterministic_and_match_data(name):
    idx = split_indices(name)
    sets = {k: set(v.tolist()) for k, v in idx.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"])
    assert not (sets["val"] & sets["test"])
    full = load_dataset(name)
    for split, ind in idx.items():
        np.testing.assert_array_equal(load_dataset(name, split), full[ind])
        np.testing.assert_array_equal(load_dataset(name, split), load_dataset(name, split))
    # no image content shared between splits either
    flat = {k: {full[i].tobytes() for i in v} for k, v in idx.items()}
    assert not (flat["train"] & flat["test"]) and not (flat["val"] & flat["test"])


@pytest.mark.parametrize("name", ["ct-head", "brain-t1"])
def test_volume_splits_are_contiguous_slabs_with_gaps(name):
    idx = split_indices(name)
    for v in idx.values():
        assert np.all(np.diff(v) == 1)
    assert idx["val"][0] - idx["train"][-1] > 1
    assert idx["test"][0] - idx["val"][-1] > 1


def test_returned_arrays_are_independent_copies():
    a = load_dataset("natural", "test")
    a[:] = -1.0
    assert load_dataset("natural", "test").min() >= 0.0


def test_ct_windowing_matches_stored_hu():
    with np.load(BUNDLED / "ct-head" / "ct-head.npz") as f:
        hu = f["hu"][5].astype(np.float64)
    x = load_dataset("ct-head")[5]
    np.testing.assert_allclose(x, np.clip((hu + 1000) / 2000, 0, 1), atol=1e-6)
    assert hu.min() >= -1000 and hu.max() <= 1000


def test_complex_sample():
    z = load_complex_sample()
    assert z.shape == (217, 181) and z.dtype == np.complex64
    assert abs(float(np.abs(z).max()) - 1.0) < 1e-6
    assert np.abs(z.imag).max() > 0.1  # genuinely complex
    np.testing.assert_allclose(load_dataset("brain-complex")[0], np.abs(z), atol=1e-6)


def test_list_and_provenance():
    info = list_datasets()
    assert set(info) == set(EXPECTED)
    for name, (shape, sizes) in EXPECTED.items():
        assert info[name].shape == shape and info[name].split_sizes == sizes
        assert info[name].licence and info[name].description
        prov = provenance(name)
        assert prov["name"] == name and prov["build_date"] and prov["processing"]
        folder = BUNDLED / name
        assert any(p.name.startswith("LICENSE") for p in folder.iterdir())
        json.loads((folder / "provenance.json").read_text())
    prov = provenance("ct-head")
    assert len(prov["source_file_sha256"]) == 64 and prov["source"]["version"]
    assert all(len(r["file_sha256"]) == 64 for r in provenance("natural")["images"])


def test_bundle_size_is_modest():
    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 15e6


@pytest.mark.parametrize(
    "args, match",
    [(("nope",), "unknown dataset name='nope'.*ct-head"), (("ct-head", "dev"), "unknown split")],
)
def test_bad_names(args, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(*args)
