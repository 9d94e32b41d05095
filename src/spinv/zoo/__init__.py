"""The model zoo: trained models that ship inside the package, each with its provenance.

An entry ``spinv/zoo/<name>/`` holds

* ``model/``: a weights-only checkpoint (``weights.safetensors`` + ``meta.json``, the format of
  :mod:`spinv.training.checkpoint`, without optimiser state), loaded by
  :func:`spinv.training.load_model` -- so it rebuilds from its own config and problem and its
  SHA-256 is checked on every load;
* ``provenance.json``: what produced it and what it measured at release -- the training config,
  the problem, data split, steps, seed, CPU seconds, precision, spinv commit, the SHA-256 of the
  weights, and ``release_metrics``: held-out PSNR/SSIM measured by :func:`measure` (the command
  that reproduces them is stored beside them);
* ``log.jsonl``: the training log (learning curve), when the run had one.

Nothing is downloaded: the weights are package data. :func:`verify` re-measures an entry and
compares with the figures recorded at release; :func:`release` turns a finished training run
into an entry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spinv.atomic import atomic_write_json
from spinv.training.checkpoint import file_sha256

__all__ = [
    "ZOO_ROOT",
    "ZooEntry",
    "get_model",
    "list_models",
    "measure",
    "release",
    "resolve_model",
    "verify",
]

ZOO_ROOT = Path(__file__).resolve().parent
PROVENANCE = "provenance.json"
MODEL_DIR = "model"
#: largest |difference| (dB for PSNR, absolute for SSIM) that :func:`verify` accepts; the same
#: command on another CPU differs in the last float32 bits, which moves PSNR by ~1e-4 dB.
TOLERANCE = {"psnr": 0.05, "ssim": 0.002}


@dataclass(frozen=True)
class ZooEntry:
    """One shipped model: its ``name``, folder ``path`` and parsed ``provenance``."""

    name: str
    path: Path
    provenance: dict

    @property
    def checkpoint(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def kind(self) -> str:
        """``"model"`` (a trained network) or ``"sampling-pattern"`` (:mod:`spinv.zoo.patterns`)."""
        return str(self.provenance.get("kind", "model"))

    def summary(self) -> str:
        """One line: problem, model, training budget and the held-out PSNR at release."""
        if self.kind != "model":
            from spinv.zoo import patterns

            return patterns.summary(self)
        p = self.provenance
        metrics = p.get("release_metrics", {}).get("summary", {})
        psnr = metrics.get("psnr", {}).get("mean")
        budget = f"{p.get('steps', '?')} steps, {p.get('cpu_seconds', 0) / 3600:.1f} CPU-h"
        score = f", held-out PSNR {psnr:.2f} dB" if psnr is not None else ""
        return f"{self.name}: {p.get('description', '')} ({budget}{score})"


def _entry(path: Path) -> ZooEntry:
    prov_path = path / PROVENANCE
    try:
        provenance = json.loads(prov_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"zoo entry {str(path)!r}: unreadable {PROVENANCE} ({err})") from None
    return ZooEntry(path.name, path, provenance)


def list_models(root: str | os.PathLike = ZOO_ROOT) -> list[ZooEntry]:
    """Every entry of the zoo at ``root``, sorted by name."""
    base = Path(root)
    return [_entry(p) for p in sorted(base.iterdir()) if (p / PROVENANCE).is_file()]


def get_model(name: str, root: str | os.PathLike = ZOO_ROOT) -> ZooEntry:
    """The entry ``name``; ``ValueError`` listing the shipped names otherwise."""
    path = Path(root) / name
    if not name or "/" in name or not (path / PROVENANCE).is_file():
        names = ", ".join(e.name for e in list_models(root)) or "(none)"
        raise ValueError(f"no model named {name!r} in the zoo; shipped: {names} "
                         "(`spinv models list`), or pass a run directory")
    return _entry(path)


def resolve_model(name_or_path: str | os.PathLike, root: str | os.PathLike = ZOO_ROOT) -> Path:
    """A checkpoint path for a run directory, a checkpoint directory or a zoo name."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    entry = get_model(str(name_or_path), root)
    if entry.kind != "model":
        raise ValueError(f"zoo entry {entry.name!r} is a {entry.kind}, not a trained model; "
                         f"use it with `spinv sampling evaluate {entry.name}`")
    return entry.checkpoint


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=ZOO_ROOT, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@torch.no_grad()
def measure(checkpoint: str | os.PathLike, split: str = "test") -> dict:
    """Held-out metrics of a checkpoint: :func:`spinv.training.evaluate.evaluate_model` on
    ``split`` of its own dataset, with the region-of-interest metrics of its problem kind (body
    mask for CT, foreground for MRI) and the evaluation seed 1234 (fixed noise). A VAE prior
    is measured by the reconstructions it makes (:func:`spinv.generative.from_model.
    measure_prior`: covariance prior vs zero filling at the MRI problem of its config)."""
    from spinv.training import load_model
    from spinv.training.evaluate import evaluate_model

    model, cfg = load_model(checkpoint)
    if cfg.model.name == "gaussian-vae":
        from spinv.generative.from_model import measure_prior

        return measure_prior(model, cfg, split)
    metrics, _ = evaluate_model(model, cfg, cfg.data.dataset, split=split, roi=True, seed=1234,
                                batch_size=cfg.eval.batch_size)
    return metrics


def _cpu_seconds(run: Path) -> float | None:
    summary = run / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        for key in ("cpu_seconds", "cpu_seconds_total"):
            if isinstance(data.get(key), (int, float)):
                return float(data[key])
    log = run / "log.jsonl"
    if log.is_file():  # wall-clock elapsed time per session, summed (1 thread: ~ CPU time)
        total, last = 0.0, 0.0
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if "elapsed" in rec:
                if rec["elapsed"] < last:
                    total += last
                last = rec["elapsed"]
        return total + last
    return None


def _certificate(model: torch.nn.Module, cfg: Any, name: str) -> dict:
    """Denoisers (problem ``denoise``): ``certificate``, the certified Lipschitz bound and
    averagedness (:func:`spinv.nn.lipschitz.lipschitz_report`, valid for every image size unless
    the model's ``certify_size`` says otherwise) beside empirical lower estimates on 32x32
    inputs, with the command that re-measures them. Other models: nothing."""
    from spinv.nn.lipschitz import lipschitz_report

    if cfg.problem.kind != "denoise":
        return {}
    report = lipschitz_report(model, (4, 1, 32, 32), starts=4, steps=30, seed=0)
    size = cfg.model.options.get("certify_size")
    keep = ("certified", "certificate_source", "certified_averagedness", "jacobian_power",
            "adversarial", "random_pairs", "empirical", "holds", "shape", "starts", "steps")
    return {"certificate": {
        **{k: report[k] for k in keep},
        "valid_for": "every image size" if size is None else f"images up to {size}",
        "command": f"spinv lipschitz <spinv>/zoo/{name}/model --size 32 --starts 4 --steps 30",
    }}


def release(run: str | os.PathLike, name: str, description: str,
            root: str | os.PathLike = ZOO_ROOT, force: bool = False,
            cpu_seconds: float | None = None, extra: dict | None = None) -> ZooEntry:
    """Make a zoo entry ``name`` from the latest checkpoint of the training run ``run``.

    The weights are re-saved without optimiser state, the held-out metrics are measured with
    :func:`measure`, and the provenance is written last, so a folder without ``provenance.json``
    is never taken for an entry. An existing entry is replaced only with ``force``.
    ``cpu_seconds``: the training's CPU time when the run's own records do not hold all of it
    (e.g. a session measured from outside); default: the run's ``summary.json``, else the sum
    of its logged elapsed times. ``extra``: further provenance fields (never replacing the
    recorded ones). Denoisers also get their ``certificate`` (:func:`_certificate`).
    """
    from spinv.training import load_model
    from spinv.training.checkpoint import read_checkpoint, save_checkpoint
    from spinv.zoo import patterns

    if patterns.is_pattern_run(run):  # a `spinv sampling learn` run: a sampling-pattern entry
        return _entry(patterns.release(run, name, description, root, force, cpu_seconds))
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"name={name!r}: a zoo name is letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit (no '/': it names a folder of the zoo)")
    run_path = Path(run)
    dest = Path(root) / name
    if dest.exists() and not force:
        raise ValueError(f"zoo entry {str(dest)!r} exists; pass force=True to replace it")
    ck = read_checkpoint(run_path)
    model, cfg = load_model(run_path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=Path(root)))
    try:
        save_checkpoint(tmp / MODEL_DIR, model, None, int(ck.metadata["step"]), cfg)
        ckpt = tmp / MODEL_DIR / f"ckpt-{int(ck.metadata['step']):06d}"
        os.replace(ckpt, tmp / "staged")
        shutil.rmtree(tmp / MODEL_DIR)
        os.replace(tmp / "staged", tmp / MODEL_DIR)
        if (run_path / "log.jsonl").is_file():
            shutil.copyfile(run_path / "log.jsonl", tmp / "log.jsonl")
        if (run_path / "recipe.json").is_file():  # a recipe the config cannot hold (zoo VAE)
            shutil.copyfile(run_path / "recipe.json", tmp / "recipe.json")
        metrics = measure(tmp / MODEL_DIR)
        provenance: dict[str, Any] = {
            "name": name,
            "description": description,
            "config": cfg.to_dict(),
            "problem": cfg.to_dict()["problem"],
            "data": {"dataset": cfg.data.dataset, "train_split": "train",
                     "n_train": cfg.data.n_train, "validation_split": "val",
                     "test_split": "test"},
            "steps": int(ck.metadata["step"]),
            "scheduled_steps": cfg.train.steps,
            "seed": cfg.train.seed,
            "precision": "float32",
            "cpu_seconds": cpu_seconds if cpu_seconds is not None else _cpu_seconds(run_path),
            "torch_threads": cfg.train.num_threads,
            "commit": _git_commit(),
            "weights_sha256": file_sha256(tmp / MODEL_DIR / "weights.safetensors"),
            "released": time.strftime("%Y-%m-%d", time.gmtime()),
            "release_metrics": {k: metrics[k] for k in ("dataset", "split", "roi", "seed",
                                                        "n_images", "summary", "generative")
                                if k in metrics},
            "measure_command": f"spinv models verify {name}",
            **_certificate(model, cfg, name),
        }
        provenance.update({k: v for k, v in (extra or {}).items() if k not in provenance})
        atomic_write_json(tmp / PROVENANCE, provenance)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _entry(dest)


def verify(name: str, root: str | os.PathLike = ZOO_ROOT) -> list[dict]:
    """Re-measure entry ``name`` and compare with its release metrics: one row per figure
    (``metric``, ``released``, ``measured``, ``difference``, ``ok``). The weights' SHA-256 is
    checked against the provenance first."""
    entry = get_model(name, root)
    if entry.kind != "model":
        from spinv.zoo import patterns

        return patterns.verify(entry)
    weights = entry.checkpoint / "weights.safetensors"
    recorded = entry.provenance.get("weights_sha256")
    if recorded is None or file_sha256(weights) != recorded:
        raise ValueError(f"zoo entry {name!r}: {str(weights)!r} does not match the SHA-256 in "
                         f"{PROVENANCE}; reinstall spinv")
    released = entry.provenance["release_metrics"]["summary"]
    measured = measure(entry.checkpoint, entry.provenance["release_metrics"]["split"])["summary"]
    rows = []
    for key in ("psnr", "ssim", "baseline_psnr", "baseline_ssim"):
        a, b = released[key]["mean"], measured[key]["mean"]
        tol = TOLERANCE["ssim" if key.endswith("ssim") else "psnr"]
        rows.append({"metric": key, "released": a, "measured": b, "difference": b - a,
                     "ok": abs(b - a) <= tol})
    cert = entry.provenance.get("certificate", {}).get("certified")
    if cert is not None:  # the certified bound is recomputed from the shipped weights
        from spinv.nn.lipschitz import certified_bound
        from spinv.training import load_model

        bound = certified_bound(load_model(entry.checkpoint)[0])[0]
        rows.append({"metric": "certified_lip", "released": cert, "measured": bound,
                     "difference": bound - cert, "ok": abs(bound - cert) <= 1e-6 * max(1, cert)})
    return rows
