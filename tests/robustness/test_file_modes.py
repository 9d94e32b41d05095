"""Outputs honour the umask and keep the mode of a file they replace (issue 15, class 13)."""

import os
import stat

import numpy as np
import pytest

from spinv.atomic import atomic_write_bytes
from spinv.cli import main


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_new_files_follow_the_umask(tmp_path, umask_077):
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert _mode(tmp_path / "a.bin") == 0o600


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o600


def test_cli_outputs_are_private_under_a_private_umask(tmp_path, umask_077):
    truth = tmp_path / "x.npy"
    np.save(truth, np.random.default_rng(0).random((16, 16)).astype(np.float32))
    assert main(["simulate", "--problem", "ct", "--input", str(truth), "--angles", "10",
                 "--out", str(tmp_path / "y.npz")]) == 0
    assert main(["reconstruct", "--measurements", str(tmp_path / "y.npz"), "--method", "fbp",
                 "--out", str(tmp_path / "r.png")]) == 0
    assert _mode(tmp_path / "y.npz") == 0o600 and _mode(tmp_path / "r.png") == 0o600
