"""Helpers of tools/build_datasets.py: slab splits and the MetaImage reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "build_datasets.py"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_datasets", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("n", [40, 100, 140])
def test_contiguous_splits(build, n):
    s = build.contiguous_splits(n)
    allidx = s["train"] + s["val"] + s["test"]
    assert len(set(allidx)) == len(allidx) and max(allidx) < n
    assert s["val"][0] - s["train"][-1] == build.SPLIT_GAP + 1
    assert s["test"][0] - s["val"][-1] == build.SPLIT_GAP + 1
    assert s["test"][-1] == n - 1


def test_contiguous_splits_too_few(build):
    with pytest.raises(ValueError, match="too few"):
        build.contiguous_splits(10)


def test_read_mha_complex(build, tmp_path):
    z = np.random.default_rng(0).standard_normal((5, 3, 2)).astype("<f4")  # rows=5, cols=3
    header = (
        "ObjectType = Image\nNDims = 2\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        "DimSize = 3 5\nElementNumberOfChannels = 2\nElementType = MET_FLOAT\n"
        "ElementDataFile = LOCAL\n"
    )
    (tmp_path / "a.mha").write_bytes(header.encode() + z.tobytes())
    hdr, arr = build.read_mha(tmp_path / "a.mha")
    assert hdr["DimSize"] == "3 5" and arr.shape == (5, 3, 2)
    np.testing.assert_array_equal(arr, z)


def test_atomic_write(build, tmp_path):
    build.save_npz(tmp_path / "x.npz", a=np.arange(3, dtype=np.int16))
    with np.load(tmp_path / "x.npz") as f:
        assert f["a"].dtype == np.int16
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
