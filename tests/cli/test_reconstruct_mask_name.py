"""``spinv reconstruct --measurements FILE.h5 --mask NAME``: a zoo sampling pattern's name
resolves to its checked ``pattern.npy`` (as ``--mask`` does with ``--input``)."""

from __future__ import annotations

import h5py
import numpy as np

from spinv.cli import main
from spinv.zoo.patterns import zoo_pattern_file

NAME = "sampling-lines64"


def _kspace(tmp_path):
    rng = np.random.default_rng(0)
    img = np.zeros((1, 64, 64), np.complex64)
    img[:, 16:48, 12:52] = 1 + 0.1 * rng.standard_normal((1, 32, 40))
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img, axes=(-2, -1)), norm="ortho"),
                        axes=(-2, -1))
    with h5py.File(tmp_path / "knee.h5", "w") as f:
        f.create_dataset("kspace", data=k)
    return tmp_path / "knee.h5"


def test_a_zoo_pattern_name_is_the_same_mask_as_its_file(tmp_path, capsys):
    h5 = _kspace(tmp_path)
    base = ["reconstruct", "--measurements", str(h5), "--method", "zero-filled", "--out"]
    assert main(base + [str(tmp_path / "name.npy"), "--mask", NAME]) == 0
    assert main(base + [str(tmp_path / "file.npy"), "--mask", str(zoo_pattern_file(NAME))]) == 0
    assert main(base + [str(tmp_path / "full.npy")]) == 0
    by_name, by_file = np.load(tmp_path / "name.npy"), np.load(tmp_path / "file.npy")
    assert np.array_equal(by_name, by_file)
    assert np.abs(by_name - np.load(tmp_path / "full.npy")).max() > 1e-2  # the mask was applied


def test_an_unknown_pattern_name_is_one_error_line(tmp_path, capsys):
    h5 = _kspace(tmp_path)
    capsys.readouterr()
    code = main(["reconstruct", "--measurements", str(h5), "--method", "zero-filled",
                 "--mask", "sampling-nope64", "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1
    assert "--mask" in err and "sampling-nope64" in err
    assert not (tmp_path / "x.npy").exists()
