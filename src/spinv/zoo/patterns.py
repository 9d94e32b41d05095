"""Zoo entries of the second kind: bilevel-learned MRI sampling patterns with their
:math:`\\alpha` (thesis ch. 1).

A learning run of ``spinv sampling learn`` (:func:`spinv.bilevel.pipeline.run_learning`) solves
the upper-level problem

.. math::  \\min_{p,\\alpha}\\ \\frac1N\\sum_{i=1}^N \\tfrac12\\|\\hat u_i(p,\\alpha)-u_i^*\\|^2
           +\\beta\\sum_j p_j + p_j(1-p_j)\\qquad(1.2)

over the sampling weights :math:`p\\in[0,1]^{H\\times W}` and the weight :math:`\\alpha` of the
lower-level Huber-TV reconstruction (Eq. 1.3), thresholds :math:`p` (:math:`p_j>0\\mapsto 1`)
and re-tunes :math:`\\alpha` on the training slices (Sec. 1.3.3). An entry
``spinv/zoo/<name>/`` of kind ``"sampling-pattern"`` holds

* ``pattern.npy``: the thresholded pattern (float32, centred k-space: DC at ``(H//2, W//2)``,
  the convention of :class:`spinv.operators.mri.SubsampledFourier`), and
  ``pattern_continuous.npy``: the learned weights before thresholding (float64, as learned);
* ``provenance.json`` (``"kind": "sampling-pattern"``): the learned lower-level parameters
  (``alpha`` for the thresholded pattern, ``alpha_continuous`` for the weights), the problem
  (dataset, size, noise, regulariser, :math:`\\gamma`, :math:`\\varepsilon`, :math:`\\beta`,
  rate), the learning config, CPU seconds, commit, SHA-256 of both arrays, and
  ``release_metrics``: PSNR/SSIM on the dataset's *test* split (22 brain-t1 slices, never
  seen by the learning) of the learned pattern and of the baselines at the same rate, each
  baseline with the :math:`\\alpha` tuned on the training slices by the learning run.

:func:`measure` re-computes those figures, :func:`compare` sets them against the recorded ones
with the zoo's tolerance; :func:`release` makes an entry from a run directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinv.atomic import atomic_save_npy, atomic_write_json
from spinv.training.checkpoint import file_sha256

__all__ = [
    "KIND",
    "PATTERN_FILE",
    "compare",
    "is_pattern_run",
    "load_pattern",
    "measure",
    "pattern_alpha",
    "release",
    "resolve_pattern",
    "retrain",
    "summary",
    "verify",
    "zoo_pattern_file",
]

KIND = "sampling-pattern"
PATTERN_FILE = "pattern.npy"
CONTINUOUS_FILE = "pattern_continuous.npy"
#: the baselines every entry is compared with, at the learned rate (spinv.operators.sampling)
BASELINES = ("variable_density", "low_pass", "variable_density_lines")
PROBLEM_KEYS = ("data", "size", "noise", "regulariser", "gamma", "eps", "parametrisation",
                "beta", "seed", "solver", "tol", "cg_tol")


def is_pattern_run(run: str | os.PathLike) -> bool:
    """A directory written by ``spinv sampling learn`` (``metrics.json`` + ``pattern.npy``)."""
    path = Path(run)
    return (path / "metrics.json").is_file() and (path / PATTERN_FILE).is_file()


def summary(entry) -> str:
    """One line for ``spinv models list``: problem, rate, alpha, held-out PSNR vs baselines."""
    p = entry.provenance
    prob, res = p["problem"], p["release_metrics"]["results"]
    base = ", ".join(f"{k} {res[k]['psnr']:.2f}" for k in BASELINES if k in res)
    return (f"{entry.name}: [sampling pattern] {p.get('description', '')} (rate "
            f"{prob['sampling_rate']:.3f}, alpha {p['alpha']:.4g}, "
            f"{p.get('cpu_seconds', 0) / 60:.1f} CPU-min; test PSNR "
            f"{res['learned']['psnr']:.2f} dB vs {base})")


def _checked_array(entry, filename: str, key: str) -> np.ndarray:
    path = entry.path / filename
    recorded = entry.provenance.get("sha256", {}).get(key)
    if not path.is_file() or recorded is None or file_sha256(path) != recorded:
        raise ValueError(f"zoo entry {entry.name!r}: {str(path)!r} does not match the SHA-256 "
                         "in provenance.json; reinstall spinv")
    return np.load(path, allow_pickle=False)


def load_pattern(name: str, root: str | os.PathLike | None = None,
                 continuous: bool = False) -> tuple[torch.Tensor, dict]:
    """The pattern of entry ``name`` (float64 ``(H, W)``, values in [0, 1], SHA-256 checked)
    and its provenance; ``continuous``: the learned weights before thresholding."""
    entry = _pattern_entry(name, root)
    key, filename = ("continuous", CONTINUOUS_FILE) if continuous else ("pattern", PATTERN_FILE)
    array = _checked_array(entry, filename, key)
    return torch.as_tensor(array, dtype=torch.float64), entry.provenance


def pattern_alpha(name: str, root: str | os.PathLike | None = None) -> float:
    """The :math:`\\alpha` learned (re-tuned on the training slices) for entry ``name``."""
    return float(_pattern_entry(name, root).provenance["alpha"])


def _pattern_entry(name: str, root: str | os.PathLike | None):
    from spinv.zoo import ZOO_ROOT, get_model

    entry = get_model(name, ZOO_ROOT if root is None else root)
    if entry.provenance.get("kind") != KIND:
        raise ValueError(f"zoo entry {name!r} is a trained model, not a sampling pattern; "
                         "see `spinv models list`")
    return entry


def resolve_pattern(name_or_path: str | os.PathLike,
                    root: str | os.PathLike | None = None) -> tuple[Path, float | None]:
    """A pattern file for a path (returned as is, alpha ``None``) or a zoo pattern name (its
    SHA-256-checked ``pattern.npy`` and learned alpha)."""
    from spinv.zoo import ZOO_ROOT, list_models

    path = Path(name_or_path).expanduser()
    if path.exists() or path.suffix == ".npy" or "/" in str(name_or_path):
        return path, None
    shipped = [e.name for e in list_models(ZOO_ROOT if root is None else root) if e.kind == KIND]
    if str(name_or_path) not in shipped:
        raise ValueError(f"pattern {str(name_or_path)!r}: no such file, and no sampling pattern "
                         f"of that name in the zoo (shipped: {', '.join(shipped) or 'none'}); "
                         "pass a .npy file or a name from `spinv models list`")
    entry = _pattern_entry(str(name_or_path), root)
    _checked_array(entry, PATTERN_FILE, "pattern")
    return entry.path / PATTERN_FILE, float(entry.provenance["alpha"])


def zoo_pattern_file(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The SHA-256-checked ``pattern.npy`` of the zoo pattern ``name``; ``None`` when no
    sampling pattern of that name ships (so ``--mask`` keeps its other meanings)."""
    from spinv.zoo import ZOO_ROOT, list_models

    base = ZOO_ROOT if root is None else root
    if not name or "/" in name or name.endswith(".npy") or not (Path(base) / name).is_dir():
        return None
    if name not in [e.name for e in list_models(base) if e.kind == KIND]:
        return None
    return resolve_pattern(name, root)[0]


def _test_lower_level(problem: dict):
    from spinv.bilevel.data import load_images, make_lower_level, resize
    from spinv.bilevel.lower_level import make_regulariser

    test = resize(load_images(problem["data"], "test"), int(problem["size"]))
    reg = make_regulariser(problem["regulariser"], gamma=problem["gamma"])
    return make_lower_level(test, reg, noise=problem["noise"], eps=problem["eps"],
                            seed=int(problem["seed"]) + 1)


def measure(pattern: torch.Tensor, alpha: float, problem: dict,
            baselines: dict[str, float]) -> dict:
    """Test-split PSNR/SSIM (whole image, :func:`spinv.bilevel.learn.evaluate_pattern`, noise
    seed ``problem.seed + 1``) of ``pattern`` with ``alpha`` and of each baseline pattern
    (``name -> alpha``) drawn at the pattern's rate with ``problem.seed``."""
    from spinv.bilevel.baselines import uninformed_patterns
    from spinv.bilevel.implicit import SolverOptions
    from spinv.bilevel.learn import evaluate_pattern
    from spinv.bilevel.parametrisations import sampling_rate

    lt = _test_lower_level(problem)
    opts = SolverOptions(method=problem["solver"], tol=problem["tol"], cg_tol=problem["cg_tol"])
    size = int(problem["size"])
    rate = max(sampling_rate(pattern), 1.0 / size**2)
    masks = uninformed_patterns((size, size), rate, int(problem["seed"]), kinds=tuple(baselines))
    results = {"learned": evaluate_pattern(lt, pattern, alpha, opts)}
    results["learned"]["alpha"] = alpha
    for name, a in baselines.items():
        results[name] = evaluate_pattern(lt, masks[name], a, opts)
        results[name]["alpha"] = a
    return {"dataset": problem["data"], "split": "test", "roi": False, "noise_seed":
            int(problem["seed"]) + 1, "n_images": results["learned"]["n_images"],
            "results": results}


def compare(released: dict, measured: dict) -> list[dict]:
    """One row per figure (``metric`` like ``learned.psnr``, ``released``, ``measured``,
    ``difference``, ``ok``), ``ok`` when within the zoo's tolerance (0.05 dB, 0.002 SSIM)."""
    from spinv.zoo import TOLERANCE

    rows = []
    for name, rec in released["results"].items():
        for key in ("psnr", "ssim"):
            a = float(rec[key])
            b = float(measured["results"].get(name, {}).get(key, float("nan")))
            rows.append({"metric": f"{name}.{key}", "released": a, "measured": b,
                         "difference": b - a, "ok": bool(abs(b - a) <= TOLERANCE[key])})
    return rows


def verify(entry) -> list[dict]:
    """Check both arrays' SHA-256, re-measure entry and :func:`compare` with its release."""
    p = entry.provenance
    pattern = torch.as_tensor(_checked_array(entry, PATTERN_FILE, "pattern"),
                              dtype=torch.float64)
    _checked_array(entry, CONTINUOUS_FILE, "continuous")
    released = p["release_metrics"]
    baselines = {k: float(v["alpha"]) for k, v in released["results"].items() if k != "learned"}
    return compare(released, measure(pattern, float(p["alpha"]), p["problem"], baselines))


def _cpu_seconds(run: Path) -> float | None:
    """User + system CPU seconds from a ``/usr/bin/time -v`` log beside the run, if any."""
    log = run.parent / f"{run.name}.log"
    if not log.is_file():
        return None
    text = log.read_text(errors="replace")
    found = [re.search(rf"{k} time \(seconds\): ([0-9.]+)", text) for k in ("User", "System")]
    return sum(float(m.group(1)) for m in found) if all(found) else None


def release(run: str | os.PathLike, name: str, description: str, root: str | os.PathLike,
            force: bool = False, cpu_seconds: float | None = None) -> Path:
    """Make entry ``name`` from a ``spinv sampling learn`` run directory: copy both arrays,
    take alpha and the baselines' training-tuned alphas from its ``metrics.json``, measure on
    the test split (:func:`measure`), write ``provenance.json`` last. Returns the entry path."""
    from spinv.zoo import _git_commit

    run_path, dest = Path(run), Path(root) / name
    if not is_pattern_run(run_path):
        raise ValueError(f"run {str(run_path)!r}: expected a `spinv sampling learn` output "
                         "(metrics.json and pattern.npy)")
    if dest.exists() and not force:
        raise ValueError(f"zoo entry {str(dest)!r} exists; pass force=True to replace it")
    m = json.loads((run_path / "metrics.json").read_text())
    cfg, res = m["config"], m["results"]
    pattern = np.load(run_path / PATTERN_FILE, allow_pickle=False).astype(np.float32)
    continuous = np.load(run_path / CONTINUOUS_FILE, allow_pickle=False).astype(np.float64)
    problem = {k: cfg[k] for k in PROBLEM_KEYS}
    problem["sampling_rate"] = float((pattern > 0).mean())
    baselines = {k: float(res[k]["alpha"]) for k in BASELINES if k in res}
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=Path(root)))
    try:
        atomic_save_npy(tmp / PATTERN_FILE, pattern)
        atomic_save_npy(tmp / CONTINUOUS_FILE, continuous)
        metrics = measure(torch.as_tensor(pattern, dtype=torch.float64), float(m["alpha"]),
                          problem, baselines)
        provenance: dict[str, Any] = {
            "name": name, "kind": KIND, "description": description,
            "alpha": float(m["alpha"]),
            "alpha_continuous": float(res["learned_continuous"]["alpha"]),
            "alpha_full_sampling": float(m["training"]["alpha_full_sampling"]),
            "problem": problem, "config": cfg,
            "data": {"dataset": cfg["data"], "train_split": "train", "n_train": m["n_train"],
                     "test_split": "test"},
            "lbfgsb_iterations": m["training"]["lbfgsb_iterations"],
            "precision": "float64",
            "cpu_seconds": cpu_seconds if cpu_seconds is not None else _cpu_seconds(run_path),
            "wall_seconds": m["seconds"], "torch_threads": m["torch_threads"],
            "commit": _git_commit(),
            "sha256": {"pattern": file_sha256(tmp / PATTERN_FILE),
                       "continuous": file_sha256(tmp / CONTINUOUS_FILE)},
            "released": time.strftime("%Y-%m-%d", time.gmtime()),
            "release_metrics": metrics,
            "measure_command": f"spinv models verify {name}",
            "use": f"spinv sampling evaluate {name}",
        }
        atomic_write_json(tmp / "provenance.json", provenance)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def retrain(entry, out: str | os.PathLike) -> str:
    """Re-run the learning of ``entry`` from its recorded config into ``out`` (``spinv models
    train NAME``); returns one line setting the new rate and alpha against the shipped ones."""
    from spinv.bilevel.config import SamplingConfig
    from spinv.bilevel.pipeline import run_learning

    m = run_learning(SamplingConfig.from_dict(entry.provenance["config"]), out, log=print)
    p = entry.provenance
    return (f"{out}: rate {m['sampling_rate']:.4f}, alpha {m['alpha']:.4g} (shipped: rate "
            f"{p['problem']['sampling_rate']:.4f}, alpha {p['alpha']:.4g})")
