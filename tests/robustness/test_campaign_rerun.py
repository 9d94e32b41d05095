"""Regressions of the re-run campaign (tools/campaign/run_campaign.py, issue 15): one test per
defect class it found, each reproducing the original failure."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from spinv.cli import app, main
from spinv.cli._guard import guard_command, name_option, one_line


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "image.npy"
    np.save(path, np.random.default_rng(0).random((16, 16)).astype(np.float32))
    return str(path)


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, needle", [
    # non-finite floats passed every range check (class: NaN accepted)
    (["--photons", "nan"], "--photons nan"),
    (["--mu", "inf"], "--mu inf"),
    # integers beyond int64 ended in a multi-line C++ overflow message (class: not one line)
    (["--size", "100000000000000000000000"], "--size"),
    # the library's own parameter names were printed instead of the option (class: unnamed)
    (["--photons", "-1"], "--photons: noise.photons=-1.0"),
    (["--angles", "0"], "--angles: geometry.n_angles=0"),
])
def test_numbers_are_checked_and_named(tmp_path, capsys, image, argv, needle):
    out = tmp_path / "y.npz"
    code = main(["simulate", "--problem", "ct", "--input", image, "--out", str(out), *argv])
    assert code == 2 and needle in _one_error(capsys)
    assert not out.exists()


def test_every_command_is_guarded():
    from spinv.cli import _register_all

    _register_all()
    infos = list(app.registered_commands)
    for group in app.registered_groups:
        infos += group.typer_instance.registered_commands
    assert infos and all(getattr(i.callback, "__spinv_guarded__", False) for i in infos)


def test_guard_keeps_the_signature_and_names_the_option():
    import typer

    def cmd(rate: float = typer.Option(0.5, "--rate"), n: int | None = None) -> float:
        return rate

    guarded = guard_command(cmd)
    assert guarded(rate=0.25) == 0.25
    with pytest.raises(ValueError, match="--rate nan"):
        guarded(rate=float("nan"))
    with pytest.raises(ValueError, match="--n "):
        guarded(n=2**64)


def test_messages_become_one_line_naming_the_option():
    torch_text = ("rand(): argument 'size' failed\nException raised from X at y.h:79\nframe #0")
    assert one_line(torch_text) == "rand(): argument 'size' failed"
    assert one_line("a\n\tb\n") == "a; b"
    assert name_option("noise.sigma=-1.0: expected >= 0", ["--noise", "-1"]) == \
        "--noise: noise.sigma=-1.0: expected >= 0"
    assert name_option("mask: all zero", ["--mask=m.npy"]) == "--mask: mask: all zero"
    # not rewritten when the value did not come from that option (e.g. a config file)
    assert name_option("noise.sigma=-1.0: x", ["cfg.yaml"]) == "noise.sigma=-1.0: x"


def test_an_empty_array_names_its_file(tmp_path):
    from spinv.data.io import load_images

    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 0), np.float32))
    with pytest.raises(ValueError, match="empty.npy.*(no pixels|no values)"):
        load_images(path)


def test_user_files_named_like_a_run_are_never_overwritten(tmp_path, capsys):
    """config.yaml + log.jsonl + summary.json of the user's own were taken for a run of an
    earlier version and replaced (train exit 0; --resume exit 0 too)."""
    from spinv.training.rundir import NotARunError, is_run, open_run

    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"config.yaml": "my: own\n", "log.jsonl": '{"mine": 1}\n',
             "summary.json": '{"mine": 1}\n'}
    for name, text in files.items():
        (mine / name).write_text(text)
    assert not is_run(mine)
    for resume in (False, True):
        with pytest.raises(NotARunError):
            open_run(mine, {"a": 1}, resume=resume)
    assert {p.name: p.read_text() for p in mine.iterdir()} == files


def test_a_bad_config_writes_no_run_directory(tmp_path, capsys):
    """The run folder used to be created (marker, config, lock) before the dataset and the
    model options were checked."""
    cfg = {"problem": {"kind": "denoise", "image_size": 16},
           "data": {"dataset": "natural", "n_train": 2, "val_size": 1},
           "model": {"name": "postprocess-cnn", "widht": 4}, "train": {"steps": 1}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out)]) == 2
    assert "model.widht" in _one_error(capsys)
    assert not out.exists()


def test_an_unusable_device_is_one_error():
    from spinv.training.distributed import DistInfo, resolve_device

    info = DistInfo()
    with pytest.raises(ValueError, match="train.device='mps' is not usable"):
        resolve_device("mps", info)


def test_lipschitz_options_have_ranges(tmp_path, capsys):
    assert main(["lipschitz", str(tmp_path / "run"), "--channels", "0"]) == 2
    assert "--channels" in _one_error(capsys)


@pytest.mark.parametrize("content, needle", [
    (b"", "not a NumPy .npy file"),  # an empty file was reported as an interrupt (EOFError)
    (b"\x00\x01junk", "not a NumPy .npy file"),  # was numpy's advice to allow pickles
])
def test_npy_files_are_read_by_one_reader_naming_the_file(tmp_path, capsys, content, needle):
    bad = tmp_path / "p.npy"
    bad.write_bytes(content)
    assert main(["sampling", "evaluate", str(bad), "--alpha", "0.01"]) == 2
    err = _one_error(capsys)
    assert str(bad) in err and needle in err


def test_a_forged_npy_header_is_refused_before_allocation(tmp_path):
    """A header promising 100000 x 100000 float32 (40 GB) ended in a MemoryError traceback."""
    import struct

    from spinv.data.npy import read_npy

    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    header = header.ljust(118) + "\n"
    path = tmp_path / "liar.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    with pytest.raises(ValueError, match="shorter than its header"):
        read_npy(path, "--measurements")
    np.save(path, (np.ones((4, 4)) * 1j).astype(np.complex64))
    with pytest.raises(ValueError, match="expected real numbers"):
        read_npy(path, "pattern", kinds="biuf")


@pytest.mark.parametrize("out", ["/dev/null/out", "{file}/out", "{file}"])
def test_an_experiment_checks_its_output_folder_first(tmp_path, capsys, out):
    """An unusable --out was found only after the whole experiment had run."""
    from spinv.experiments.protocol import writable_folder

    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    with pytest.raises(ValueError, match="--out"):
        writable_folder(out.format(file=a_file))
    assert a_file.read_text() == "mine\n"


def test_an_empty_config_file_is_refused(tmp_path, capsys):
    """An empty file was read as "all defaults": spinv train ran a default experiment."""
    empty = tmp_path / "c.yaml"
    empty.write_text("# nothing\n")
    out = tmp_path / "run"
    assert main(["train", str(empty), "--out", str(out)]) == 2
    assert "is empty" in _one_error(capsys) and not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["--lam", "-1"], "--lam"), (["--rate", "0"], "--rate"), (["--pattern", "bogus"], "--pattern"),
    (["--dataset", "bogus"], "--dataset"), (["--method", "bogus"], "--method"),
])
def test_generative_reconstruct_checks_options_before_reading_models(tmp_path, capsys, argv,
                                                                      needle):
    """Every bad option was reported as the missing model folder it never reached."""
    code = main(["generative", "reconstruct", "--models", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o"), *argv])
    assert code == 2 and needle in _one_error(capsys)


def test_photon_counts_beyond_float64_integers_are_refused():
    """--photons 1e300 made torch.poisson wrap to -2**63: every ray 'starved', a constant
    sinogram written with exit 0 (a silent wrong answer)."""
    import torch

    from spinv.operators.noise import MAX_PHOTONS, poisson_post_log

    sino = torch.rand(1, 1, 4, 6)
    y = poisson_post_log(sino, 0.5, photons=MAX_PHOTONS, seed=0)
    assert torch.isfinite(y).all() and float(y.std()) > 0
    with pytest.raises(ValueError, match="photons=1e\\+300"):
        poisson_post_log(sino, 0.5, photons=1e300, seed=0)


def test_zoo_names_cannot_leave_the_zoo(tmp_path):
    """--name '../x' would have written a model outside the zoo folder."""
    from spinv.zoo import release

    for name in ("../x", "a/b", ".", ""):
        with pytest.raises(ValueError, match="zoo name"):
            release(tmp_path / "no-run", name, "d", root=tmp_path / "zoo")
    assert not any(tmp_path.iterdir())


def test_demo_checks_its_output_folder_first(capsys):
    """The demo ran to the end (minutes) before finding that --out could not be written."""
    assert main(["demo", "--out", "/dev/null/demo"]) == 2
    assert "--out" in _one_error(capsys)


def test_an_all_zero_sampling_pattern_is_refused(tmp_path, capsys):
    """An all-zero pattern measured nothing and sampling evaluate reported a PSNR (exit 0)."""
    pattern = tmp_path / "zeros.npy"
    np.save(pattern, np.zeros((16, 16), np.float32))
    assert main(["sampling", "evaluate", str(pattern), "--alpha", "0.01"]) == 2
    assert str(pattern) in _one_error(capsys)


def test_report_refuses_a_folder_that_only_holds_a_config(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own\n")
    out = tmp_path / "rep"
    assert main(["report", str(mine), "--out", str(out)]) == 2
    assert str(mine) in _one_error(capsys) and not out.exists()


def test_raw_sinograms_use_the_safe_reader(tmp_path, capsys):
    """An empty (0, 0) raw sinogram gave 'geometry.n_angles=0'; a forged header a MemoryError."""
    sino = tmp_path / "s.npy"
    np.save(sino, np.zeros((0, 0), np.float32))
    out = tmp_path / "r.npy"
    assert main(["reconstruct", "--measurements", str(sino), "--method", "fbp",
                 "--out", str(out)]) == 2
    assert str(sino) in _one_error(capsys) and not out.exists()


def test_a_noise_level_whose_square_overflows_is_refused():
    """--noise 1e300 ended in 'x contains NaN values' after the solve."""
    import torch

    from spinv.operators.noise import complex_gaussian_noise

    with pytest.raises(ValueError, match="sigma=1e\\+300: at most"):
        complex_gaussian_noise(torch.zeros(1, 1, 4, 4, dtype=torch.complex64), 1e300, seed=0)


def test_pnp_verifies_the_given_denoiser_before_training(tmp_path, capsys):
    """A damaged --denoiser was found only after the DnCNN runs had been trained and written."""
    cfg = {"problem": {"kind": "denoise", "image_size": 16},
           "data": {"dataset": "natural", "n_train": 2, "val_size": 1},
           "model": {"name": "postprocess-cnn", "width": 2, "depth": 2},
           "train": {"steps": 1, "batch_size": 1, "checkpoint_every": 1, "num_threads": 1}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    weights = next(run.glob("ckpt-*/weights.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    capsys.readouterr()
    out = tmp_path / "pnp"
    code = main(["nonexpansive", "pnp", "configs/nonexpansive-smoke.yaml", "--out", str(out),
                 "--denoiser", str(run), "--quiet"])
    assert code == 2 and "weights.safetensors" in _one_error(capsys)
    assert not out.exists()


def test_an_experiment_override_error_names_the_override(tmp_path, capsys):
    """A bad --set value was reported as an error of the config file."""
    code = main(["experiment", "run", "nonexpansive", "toy", "configs/nonexpansive-smoke.yaml",
                 "--out", str(tmp_path / "o"), "--set", "steps=-1"])
    assert code == 2 and "--set steps=-1" in _one_error(capsys)
