"""Hostile input files of the campaign (``tools/campaign/run_campaign.py``), written once into a
fixture folder that no case may modify: valid references (a 16x16 image, simulated
measurements, a tiny trained run) and their malformed variants (empty, junk bytes, truncated,
pickled objects, NaN, wrong shapes, configs with syntax errors, unknown keys, wrong types)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import yaml

TINY = {
    "name": "tiny-denoise",
    "problem": {"kind": "denoise", "image_size": 16, "noise_sigma": 0.1},
    "data": {"dataset": "natural", "n_train": 4, "rotate_train": False, "val_size": 2},
    "model": {"name": "postprocess-cnn", "width": 4, "depth": 2},
    "train": {"steps": 4, "batch_size": 2, "lr": 1.0e-3, "seed": 0, "checkpoint_every": 2,
              "log_every": 1, "num_threads": 1},
    "eval": {"split": "test", "n_examples": 1},
}

EXTS = ("npy", "npz", "h5", "dcm", "nii", "png", "yaml", "tif")


def _yaml(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _config_variants(fx: Path, stem: str, base: dict, section, key: str) -> None:
    """``stem-*.yaml`` mutations of a valid config ``base``: unknown key, wrong type, NaN,
    infinity, negative, top-level list; ``section.key`` is a numeric key of the schema."""
    _yaml(fx / f"{stem}-ok.yaml", base)

    def edit(value):
        d = json.loads(json.dumps(base))
        for sec in (section if isinstance(section, tuple) else (section,)):
            (d[sec] if sec else d)[key] = value
        return d

    _yaml(fx / f"{stem}-unknown.yaml", {**base, "no_such_key": 1})
    _yaml(fx / f"{stem}-wrongtype.yaml", edit("abc"))
    (fx / f"{stem}-nan.yaml").write_text(yaml.safe_dump(edit(0.5)).replace("0.5", ".nan"))
    (fx / f"{stem}-inf.yaml").write_text(yaml.safe_dump(edit(0.5)).replace("0.5", ".inf"))
    _yaml(fx / f"{stem}-negative.yaml", edit(-1))
    _yaml(fx / f"{stem}-list.yaml", [base])


def _files(fx: Path) -> None:
    rng = np.random.default_rng(0)
    img = rng.random((16, 16)).astype(np.float32)
    np.save(fx / "image16.npy", img)
    np.save(fx / "image32.npy", rng.random((32, 32)).astype(np.float32))
    np.save(fx / "stack.npy", rng.random((3, 16, 16)).astype(np.float32))
    for ext in EXTS:
        (fx / f"empty.{ext}").write_bytes(b"")
        (fx / f"garbage.{ext}").write_bytes(b"\x00\x01\xffnot a file of this kind\x00" * 8)
    raw = (fx / "image16.npy").read_bytes()
    (fx / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    np.save(fx / "object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(fx / "zero.npy", np.zeros((0, 0), np.float32))
    np.save(fx / "vector.npy", img[0])
    np.save(fx / "nan.npy", np.where(img > 0.5, np.nan, img).astype(np.float32))
    np.save(fx / "inf.npy", np.where(img > 0.5, np.inf, img).astype(np.float32))
    np.save(fx / "complex.npy", (img + 1j * img).astype(np.complex64))
    np.save(fx / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(fx / "allzero.npy", np.zeros((16, 16), np.float32))
    np.save(fx / "constant.npy", np.full((16, 16), 0.5, np.float32))
    np.save(fx / "rect.npy", rng.random((16, 24)).astype(np.float32))
    np.save(fx / "negative.npy", (img - 2).astype(np.float32))
    np.save(fx / "big5d.npy", rng.random((1, 1, 2, 16, 16)).astype(np.float32))
    # a .npy header promising 100000 x 100000 float32 (40 GB) with no data behind it
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    header = header.ljust(118) + "\n"
    (fx / "liar.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
                                  + header.encode())
    np.savez(fx / "other_keys.npz", foo=img)
    np.savez(fx / "nan_meas.npz", y=np.full((30, 23), np.nan, np.float32))
    (fx / "a_dir.npy").mkdir()
    (fx / "plainfile").write_text("a plain file, not a folder\n")
    (fx / "latin.yaml").write_bytes("name: caf\xe9\ntrain: {steps: 2}\n".encode("latin-1"))
    (fx / "bad.yaml").write_text("train: {steps: 3\n  oops: [\n")
    (fx / "scalar.yaml").write_text("42\n")
    _rgb_png(fx / "rgb4x64.png")


def _rgb_png(path: Path) -> None:
    from PIL import Image

    arr = (np.random.default_rng(1).random((4, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr, "RGB").save(path)


def _configs(fx: Path, repo: Path) -> None:
    _config_variants(fx, "train", TINY, "train", "lr")
    _yaml(fx / "train-bigct.yaml", {**TINY, "problem": {"kind": "ct", "image_size": 100000}})
    _yaml(fx / "train-baddata.yaml", {**TINY, "data": {"dataset": "no-such-data"}})
    _yaml(fx / "train-badmodel.yaml", {**TINY, "model": {"name": "no-such-model"}})
    _yaml(fx / "train-modelopt.yaml", {**TINY, "model": {"name": "postprocess-cnn",
                                                          "widht": 4}})
    _yaml(fx / "train-datafile.yaml", {**TINY, "data": {"dataset": str(fx / "garbage.npy")}})
    _yaml(fx / "train-zerobatch.yaml", {**TINY, "train": {**TINY["train"], "batch_size": 0}})
    _yaml(fx / "train-hugelr.yaml", {**TINY, "train": {**TINY["train"], "lr": 1.0e4}})
    for stem, name, section, key in (("sampling", "sampling-smoke", None, "noise"),
                                     ("generative", "generative-smoke", "train", "mean_steps"),
                                     ("equivariance", "equivariance-smoke", "small", "lr"),
                                     ("nonexpansive", "nonexpansive-smoke",
                                      ("toy", "denoise", "pnp"), "threads")):
        base = yaml.safe_load((repo / "configs" / f"{name}.yaml").read_text())
        _config_variants(fx, stem, base, section, key)
    smp = yaml.safe_load((repo / "configs" / "sampling-smoke.yaml").read_text())
    _yaml(fx / "sampling-datafile.yaml", {**smp, "data": str(fx / "garbage.npy")})
    _yaml(fx / "sampling-size0.yaml", {**smp, "size": 0})


def _damaged_runs(fx: Path) -> None:
    """Copies of the tiny run ``fx/run`` with one damage each."""
    run = fx / "run"
    ck = sorted(run.glob("ckpt-*"))[-1]

    def copy(name: str) -> tuple[Path, Path]:
        dst = fx / name
        shutil.copytree(run, dst)
        return dst, dst / ck.name

    d, c = copy("run-trunc")
    w = (c / "weights.safetensors").read_bytes()
    (c / "weights.safetensors").write_bytes(w[: len(w) // 2])
    d, c = copy("run-nosha")
    meta = json.loads((c / "meta.json").read_text())
    meta.pop("weights_sha256")
    (c / "meta.json").write_text(json.dumps(meta))
    d, c = copy("run-badmeta")
    (c / "meta.json").write_text("{not json")
    d, c = copy("run-nostep")
    meta = json.loads((c / "meta.json").read_text())
    meta.pop("step")
    (c / "meta.json").write_text(json.dumps(meta))
    d, c = copy("run-shape")
    meta = json.loads((c / "meta.json").read_text())
    meta["config"]["model"]["width"] = 8
    (c / "meta.json").write_text(json.dumps(meta))
    d, c = copy("run-badlatest")
    (d / "latest.json").write_text('{"checkpoint": "ckpt-999999", "step": 999999}')
    d, c = copy("run-noconfig")
    (d / "config.yaml").unlink()
    for p in d.glob("ckpt-*"):
        shutil.rmtree(p)
    (d / "latest.json").unlink()
    (fx / "emptydir").mkdir()
    nr = fx / "notrun"
    nr.mkdir()
    (nr / "config.yaml").write_text("my: own file\n")
    (nr / "notes.txt").write_text("user data\n")


def make_fixtures(fx: Path, repo: Path, run_cli) -> Path:
    """Write every fixture into ``fx``; ``run_cli(argv, cwd)`` runs one spinv command and
    returns its exit code (used for the simulated measurements and the tiny run)."""
    fx.mkdir(parents=True)
    _files(fx)
    _configs(fx, repo)
    for kind, img in (("ct", "image32"), ("mri", "image16"), ("denoise", "image16")):
        code = run_cli(["simulate", "--problem", kind, "--input", str(fx / f"{img}.npy"),
                        "--out", str(fx / f"meas_{kind}.npz"), "--angles", "30"], fx)
        assert code == 0, f"fixture simulate {kind} failed"
    y = np.load(fx / "meas_ct.npz")["y"]
    np.save(fx / "sino.npy", np.asarray(y, np.float32).reshape(y.shape[-2:]))
    np.save(fx / "pattern.npy", np.full((32, 32), 0.3, np.float32))
    code = run_cli(["train", str(fx / "train-ok.yaml"), "--out", str(fx / "run")], fx)
    assert code == 0, "fixture run failed"
    _damaged_runs(fx)
    return fx
