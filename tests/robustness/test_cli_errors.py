"""Every bad command line ends in exactly one `error:` line and exit code 2 (issue 15, class 14
and the one-line rule): usage errors of the option parser included, seeds out of range named."""

import numpy as np
import pytest

from spinv.cli import main


@pytest.fixture
def image(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((16, 16)).astype(np.float32))
    return tmp_path / "x.npy"


@pytest.mark.parametrize("args, needle", [
    (["reconstruct", "--input", "{x}", "--out", "{out}"], "Missing option '--method'"),
    (["simulate", "--problem", "ct", "--input", "{x}", "--seed", "abc", "--out", "{out}"],
     "'--seed'"),
    (["simulate", "--problem", "mri", "--input", "{x}", "--seed", str(10**23), "--out", "{out}"],
     "--seed"),
    (["simulate", "--problem", "ct", "--input", "{x}", "--seed", "-1", "--out", "{out}"],
     "--seed -1"),
    (["no-such-command"], "No such command"),
    (["reconstruct", "--measurements", "{x}", "--method", "fbp", "--bogus", "--out", "{out}"],
     "--bogus"),
])
def test_one_error_line_exit_2_no_output(image, tmp_path, capsys, args, needle):
    out = tmp_path / "out.npz"
    argv = [a.format(x=image, out=out) for a in args]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err and not out.exists()


def test_help_still_exits_zero(capsys):
    assert main(["reconstruct", "--help"]) == 0
    assert "--measurements" in capsys.readouterr().out
