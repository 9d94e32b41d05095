"""Checkpoints: safetensors tensors + JSON metadata, written atomically, loaded without pickle.

Layout of a run directory ``RUN``::

    RUN/ckpt-000100/weights.safetensors   model/<name>, optim/<param>/<key>, rng/torch_cpu,
                                          state/<name> (extra state, e.g. a data generator)
    RUN/ckpt-000100/meta.json             config, spinv version, step, RNG states of python and
                                          numpy, optimiser non-tensor state, sha256 of weights
    RUN/latest.json                       {"checkpoint": "ckpt-000100", "step": 100}

A checkpoint directory is first written under a temporary name and renamed into place; only
then is ``latest.json`` replaced (itself via a temporary file and :func:`os.replace`), and only
after that are checkpoints older than the ``keep`` most recent deleted. A crash at any moment
therefore leaves ``latest.json`` pointing at a complete checkpoint.

Loading never unpickles: tensors come from safetensors, everything else from JSON; the SHA-256
recorded in ``meta.json`` detects a truncated or corrupt ``weights.safetensors``, which raises
``ValueError`` naming the file.

>>> import tempfile, torch
>>> from torch import nn
>>> model = nn.Linear(3, 2)
>>> opt = torch.optim.Adam(model.parameters(), lr=1e-3)
>>> model(torch.ones(1, 3)).sum().backward(); opt.step()
>>> with tempfile.TemporaryDirectory() as run:
...     path = save_checkpoint(run, model, opt, step=1, config={"name": "x"})
...     state, meta = load_checkpoint(run)
>>> meta["step"], sorted(state)
(1, ['bias', 'weight'])
>>> bool(torch.equal(state["weight"], model.weight))
True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import spinv
from spinv.atomic import atomic_write_json

WEIGHTS = "weights.safetensors"
META = "meta.json"
LATEST = "latest.json"
FORMAT = "spinv-checkpoint/1"


# ----------------------------------------------------------------------------- atomic writes


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- RNG states


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Global RNG states: torch (CPU and CUDA) as uint8 tensors; python and numpy as JSON."""
    tensors = {"rng/torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/torch_cuda/{i}"] = s
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    js = {
        "python": {"version": version, "state": list(state), "gauss_next": gauss},
        "numpy": {
            "kind": kind,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    return tensors, js


def restore_rng_state(tensors: dict[str, torch.Tensor], js: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    if "rng/torch_cpu" in tensors:
        torch.set_rng_state(tensors["rng/torch_cpu"].to(torch.uint8).cpu())
    cuda = sorted(k for k in tensors if k.startswith("rng/torch_cuda/"))
    if cuda and torch.cuda.is_available():
        states = [tensors[k].cpu() for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)
    if "python" in js:
        p = js["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "numpy" in js:
        n = js["numpy"]
        np.random.set_state(
            (n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
             n["cached_gaussian"])
        )


# ----------------------------------------------------------------------------- (de)serialise


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{where}: value {value!r} of type {type(value).__name__} is not JSON-able")


def _store(tensors: dict, key: str, t: torch.Tensor, complex_keys: list) -> None:
    t = t.detach().to("cpu")
    if t.is_complex():
        complex_keys.append(key)
        t = torch.view_as_real(t)
    tensors[key] = t.contiguous().clone()


def _split_optimizer(opt_state: dict, tensors: dict, complex_keys: list) -> dict:
    state_js: dict[str, dict] = {}
    for pid, pstate in opt_state.get("state", {}).items():
        entry: dict[str, Any] = {}
        for k, v in pstate.items():
            if isinstance(v, torch.Tensor):
                _store(tensors, f"optim/{pid}/{k}", v, complex_keys)
                entry[k] = {"__tensor__": f"optim/{pid}/{k}"}
            else:
                entry[k] = _jsonable(v, f"optimizer state {pid}.{k}")
        state_js[str(pid)] = entry
    groups = _jsonable(opt_state.get("param_groups", []), "optimizer param_groups")
    return {"state": state_js, "param_groups": groups}


def _join_optimizer(js: dict, tensors: dict) -> dict:
    state: dict[int, dict] = {}
    for pid, entry in js.get("state", {}).items():
        state[int(pid)] = {
            k: tensors[v["__tensor__"]] if isinstance(v, dict) and "__tensor__" in v else v
            for k, v in entry.items()
        }
    groups = []
    for g in js.get("param_groups", []):
        g = dict(g)
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _field_error(path: Path, field: str, problem: str) -> ValueError:
    return ValueError(f"checkpoint metadata {str(path)!r}: field {field!r} {problem}; the "
                      "checkpoint was altered or damaged (use an earlier checkpoint or retrain)")


def _validate_optimizer(opt: Any, tensors: dict, path: Path) -> None:
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) \
            or not isinstance(opt.get("param_groups"), list):
        raise _field_error(path, "optimizer", "must hold 'state' (a mapping) and "
                                              "'param_groups' (a list)")
    for pid, entry in opt["state"].items():
        if not str(pid).isdigit() or not isinstance(entry, dict):
            raise _field_error(path, f"optimizer.state.{pid}", "is not a parameter's state")
        for key, value in entry.items():
            ref = value.get("__tensor__") if isinstance(value, dict) else None
            if isinstance(value, dict) and ref not in tensors:
                raise _field_error(path, f"optimizer.state.{pid}.{key}",
                                   f"refers to the tensor {ref!r}, which the weights lack")
    for i, group in enumerate(opt["param_groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise _field_error(path, f"optimizer.param_groups.{i}", "has no 'params' list")
        for key in ("lr", "eps"):
            if key in group and not (isinstance(group[key], (int, float))
                                     and math.isfinite(group[key]) and group[key] >= 0):
                raise _field_error(path, f"optimizer.param_groups.{i}.{key}",
                                   f"is {group[key]!r}, not a finite number >= 0")


def validate_metadata(meta: dict, tensors: dict, path: Path) -> None:
    """Check ``meta.json`` against the checkpoint schema before anything is used: ``step`` a
    non-negative integer, ``config`` a mapping, ``complex_keys`` naming stored ``(..., 2)``
    tensors, the optimiser's tensor references present and its groups well-formed, ``rng`` a
    mapping. One ``ValueError`` names the file and the field."""
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _field_error(path, "step", f"is {step!r}, not a non-negative integer")
    if not isinstance(meta.get("config"), dict):
        raise _field_error(path, "config", "is missing or not a mapping")
    keys = meta.get("complex_keys", [])
    if not isinstance(keys, list):
        raise _field_error(path, "complex_keys", "is not a list")
    for key in keys:
        t = tensors.get(key)
        if t is None or t.ndim == 0 or t.shape[-1] != 2 or not t.is_floating_point():
            raise _field_error(path, "complex_keys", f"names {key!r}, which is not a stored "
                                                     "(real, imaginary) tensor")
    if meta.get("optimizer") is not None:
        _validate_optimizer(meta["optimizer"], tensors, path)
    if not isinstance(meta.get("rng", {}), dict):
        raise _field_error(path, "rng", "is not a mapping")


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- public API


def checkpoint_name(step: int) -> str:
    """Directory name of the checkpoint at ``step`` (``ckpt-000100``)."""
    return f"ckpt-{step:06d}"


def save_checkpoint(
    dir: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    config: Any,
    extra: dict | None = None,
    keep: int = 2,
    state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save ``model`` (+ ``optimizer``, RNG states) at ``step`` into run directory ``dir``.

    ``config`` is a plain dict or an object with ``to_dict()``; ``extra`` is JSON-able metadata
    (e.g. an LR-scheduler state), stored under ``meta["extra"]``; ``state`` holds further tensors
    to restore on resume (e.g. ``data/generator``), stored as ``state/<name>`` and read back as
    :attr:`Checkpoint.state`. Returns the checkpoint directory. The ``keep`` most recent
    checkpoints are kept (at least the new one).
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step={step!r}: expected a non-negative integer")
    if keep < 1:
        raise ValueError(f"keep={keep!r}: expected an integer >= 1")
    run = Path(dir)
    run.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    tensors: dict[str, torch.Tensor] = {}
    complex_keys: list[str] = []
    for k, v in model.state_dict().items():
        _store(tensors, f"model/{k}", v, complex_keys)
    opt_js = None
    if optimizer is not None:
        opt_js = _split_optimizer(optimizer.state_dict(), tensors, complex_keys)
    for k, v in (state or {}).items():
        _store(tensors, f"state/{k}", v, complex_keys)
    rng_t, rng_js = capture_rng_state()
    tensors.update(rng_t)
    cfg = config.to_dict() if hasattr(config, "to_dict") else config
    meta = {
        "format": FORMAT,
        "spinv_version": spinv.__version__,
        "torch_version": torch.__version__,
        "step": step,
        "config": _jsonable(cfg, "config"),
        "optimizer": opt_js,
        "rng": rng_js,
        "complex_keys": complex_keys,
        "extra": _jsonable(extra or {}, "extra"),
    }
    final = run / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=run))
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        with open(tmp / WEIGHTS, "rb+") as fh:
            os.fsync(fh.fileno())
        meta["weights_sha256"] = file_sha256(tmp / WEIGHTS)
        atomic_write_json(tmp / META, meta)
        if final.exists():  # re-saving a step (e.g. after a resume): swap out the old one
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=run))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(run)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(run / LATEST, {"checkpoint": final.name, "step": step})
    _prune(run, keep)
    return final


def _prune(run: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, and temporaries left by a killed writer
    (a run directory has a single writer: rank 0)."""
    ckpts = sorted(p for p in run.glob("ckpt-[0-9]*") if p.is_dir() and p.name[5:].isdigit())
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in list(run.glob(".ckpt-*.tmp")) + list(run.glob(".ckpt-*.old")):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in run.glob(f".{LATEST}.*.tmp"):
        stale.unlink(missing_ok=True)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory for a run directory (via ``latest.json``), a checkpoint
    directory, or its ``weights.safetensors``/``meta.json`` file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint path {str(p)!r} does not exist")
    if p.is_file():
        if p.name in (WEIGHTS, META):
            return p.parent
        if p.name == LATEST:
            p = p.parent
        else:
            raise ValueError(
                f"{str(p)!r} is not a checkpoint: expected a run directory, a checkpoint "
                f"directory, {WEIGHTS} or {META}"
            )
    if (p / LATEST).is_file():
        try:
            latest = json.loads((p / LATEST).read_text())
            name = latest["checkpoint"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"corrupt checkpoint pointer {str(p / LATEST)!r}: {err}") from None
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"corrupt checkpoint pointer {str(p / LATEST)!r}: bad name {name!r}")
        target = p / name
        if not target.is_dir():
            raise FileNotFoundError(
                f"{str(p / LATEST)!r} points to {str(target)!r}, which does not exist"
            )
        return target
    if (p / META).is_file() or (p / WEIGHTS).is_file():
        return p
    raise FileNotFoundError(
        f"no checkpoint in {str(p)!r}: expected {LATEST} (run directory) or {META} and {WEIGHTS}"
    )


def latest_step(run_dir: str | os.PathLike) -> int | None:
    """Step of the latest complete checkpoint of a run, or ``None`` if there is none."""
    p = Path(run_dir) / LATEST
    if not p.is_file():
        return None
    return int(read_checkpoint(run_dir).metadata["step"])


@dataclass
class Checkpoint:
    """Everything read back from a checkpoint directory."""

    path: Path
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict | None
    rng_tensors: dict[str, torch.Tensor]
    metadata: dict
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # ``state/<name>`` tensors


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
    """Read and verify a checkpoint (see :func:`resolve_checkpoint` for accepted paths)."""
    ckpt = resolve_checkpoint(path)
    meta_path, weights_path = ckpt / META, ckpt / WEIGHTS
    for f in (meta_path, weights_path):
        if not f.is_file():
            raise FileNotFoundError(f"checkpoint file {str(f)!r} is missing")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"corrupt checkpoint metadata {str(meta_path)!r}: {err}") from None
    digest = meta.get("weights_sha256")
    if not isinstance(digest, str):
        raise ValueError(
            f"checkpoint metadata {str(meta_path)!r} lacks the field 'weights_sha256' (the "
            "SHA-256 of the weights); it was altered or is not a spinv checkpoint"
        )
    if file_sha256(weights_path) != digest:
        raise ValueError(
            f"corrupt or truncated checkpoint {str(weights_path)!r}: SHA-256 does not match "
            f"the one recorded in {META}"
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"corrupt checkpoint {str(weights_path)!r}: {err}") from None
    validate_metadata(meta, tensors, meta_path)
    for key in meta.get("complex_keys", []):
        tensors[key] = torch.view_as_complex(tensors[key].contiguous())
    if map_location is not None:
        tensors = {
            k: (v if k.startswith(("rng/", "state/")) else v.to(map_location))
            for k, v in tensors.items()
        }
    model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    opt = meta.get("optimizer")
    optimizer_state = _join_optimizer(opt, tensors) if opt is not None else None
    rng = {k: v for k, v in tensors.items() if k.startswith("rng/")}
    extra_state = {k[len("state/"):]: v for k, v in tensors.items() if k.startswith("state/")}
    return Checkpoint(ckpt, model_state, optimizer_state, rng, meta, extra_state)


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[dict[str, torch.Tensor], dict]:
    """``(model state_dict, metadata)`` of a checkpoint; metadata is the parsed ``meta.json``
    (``step``, ``config``, ``spinv_version``, ``rng``, ``optimizer``, ``extra``) plus ``path``."""
    ck = read_checkpoint(path, map_location)
    meta = dict(ck.metadata)
    meta["path"] = str(ck.path)
    return ck.model_state, meta


def load_model(
    run_dir_or_ckpt: str | os.PathLike, device: Any = None
) -> tuple[torch.nn.Module, Any]:
    """Rebuild the trained model of a run: ``(model in eval mode, ExperimentConfig)``.

    The operator is reconstructed from the stored config (:func:`spinv.training.data.make_operator`)
    and the weights are loaded strictly.
    """
    from spinv.training.config import parse_config
    from spinv.training.data import make_operator
    from spinv.training.registry import build_model

    ck = read_checkpoint(run_dir_or_ckpt, map_location="cpu")
    try:
        cfg = parse_config(ck.metadata["config"])
    except (KeyError, ValueError) as err:
        raise ValueError(f"checkpoint {str(ck.path)!r} has an invalid config: {err}") from None
    operator = make_operator(cfg.problem)
    model = build_model(cfg.model.name, cfg.model.options, operator)
    return load_weights(model, ck, f"model {cfg.model.name!r}", device), cfg


def load_weights(model: torch.nn.Module, ck: Checkpoint, what: str,
                 device: Any = None) -> torch.nn.Module:
    """``model`` with the checkpoint's weights (strict), on ``device``, in eval mode; a
    mismatch is one ``ValueError`` naming the checkpoint and ``what`` it should hold."""
    try:
        model.load_state_dict(ck.model_state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {str(ck.path)!r} does not match {what}: {err}") from None
    if device is not None:
        model = model.to(device)
    return model.eval()
