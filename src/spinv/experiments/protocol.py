"""The one protocol of the thesis' experiments: a catalogue of :class:`Experiment` records.

Each chapter is a package ``spinv.experiments.<chapter>`` (``sampling``, ``equivariance``, ...)
whose ``__init__`` exposes ``EXPERIMENTS``: a tuple of :class:`Experiment`. An experiment is

* a typed config **schema**: a (frozen) dataclass read by :mod:`spinv.typed_config` (an unknown
  key or a bad value is one ``ValueError`` naming the key path and the file);
* a **run** function ``run(config, out, progress, resume=False) -> results``: it writes its
  outputs (``results.json``/``summary.json``, tables, figures, model runs under
  ``out/models/<name>``) into the folder ``out`` and returns the results as a dict;
* optionally a **report** ``report(results, out) -> str``: the text shown after a run.

Progress: one protocol, the training engine's: ``progress(step, total, scalars)`` after every
step (:func:`spinv.training.engine.fit`). An experiment that counts several things in turn (one
model after the other) adds the key ``"stage"`` (a short label, e.g. ``"N=2 C4"``) to
``scalars`` (:func:`staged`); a renderer starts a new bar when the stage changes.

Config files: a YAML mapping, either flat (the schema's keys at the top level) or with one
section per scale, ``small:`` (CPU minutes) and/or ``paper:`` (the thesis' sizes). Both forms
may carry ``description`` (free text) and ``command`` (the experiment the file is meant for;
another experiment refuses it). ``key.path=value`` overrides (``--set``) apply to the section
read. A schema with a field ``scale`` receives the scale read (``None`` for a flat file).
A chapter whose files hold one section per experiment instead (``configs/nonexpansive-*.yaml``:
``toy:``, ``denoise:``, ``pnp:``) names them in :attr:`Experiment.sections`; each experiment
reads the section named like itself (key paths ``denoise.steps``), a file without any of them
is flat.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Toy:
...     steps: int = 1
>>> toy = Experiment("demo", "toy", "a toy", Toy, lambda c, out, progress, resume=False: {})
>>> toy.load({"small": {"steps": 3}, "paper": {"steps": 9}}, "paper").steps
9
>>> toy.load({"small": {"stepz": 3}})
Traceback (most recent call last):
...
ValueError: config: config key 'small.stepz': unknown key; allowed: steps
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinv.typed_config import apply_overrides, build, read_yaml

__all__ = [
    "CHAPTER_ORDER",
    "Experiment",
    "Progress",
    "SCALES",
    "STAGE",
    "catalogue",
    "find",
    "lazy",
    "staged",
]

Progress = Callable[[int, int, Mapping[str, Any]], None]
"""``progress(step, total, scalars)``: the training engine's progress protocol."""

STAGE = "stage"
SCALES = ("small", "paper")
RESERVED = ("description", "command")
CHAPTER_ORDER = ("sampling", "equivariance", "nonexpansive", "generative")


def staged(progress: Progress | None, stage: str) -> Progress | None:
    """``progress`` with ``scalars["stage"] = stage`` added to every call (``None`` stays
    ``None``)."""
    if progress is None:
        return None

    def report(step: int, total: int, scalars: Mapping[str, Any]) -> None:
        progress(step, total, {**scalars, STAGE: stage})

    return report


def lazy(target: str) -> Callable[..., Any]:
    """The function ``"package.module:name"``, imported at its first call (so that listing the
    catalogue does not import every experiment's dependencies)."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"target {target!r}: expected 'package.module:function'")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{target}``, imported when called."
    return call


def writable_folder(out: str | os.PathLike) -> Path:
    """The output folder ``out``, created now: a path that cannot be a folder (a file, a path
    through a file, a read-only file system) is one error naming ``--out`` before the
    experiment runs, not after hours of work."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(path)!r}: cannot create the folder "
                         f"({err.strerror or err})") from None
    return path


@dataclass(frozen=True)
class Experiment:
    """One experiment of the catalogue (module docstring): ``chapter`` (its package),
    ``name`` (the command), a one-line ``summary``, the config ``schema``, ``run(config, out,
    progress, resume=False) -> dict``, optionally ``report(results, out) -> str``, whether
    ``resume`` continues its model runs (``resumable``) and the per-experiment ``sections`` of
    its chapter's files (module docstring)."""

    chapter: str
    name: str
    summary: str
    schema: type
    run: Callable[..., dict]
    report: Callable[[dict, Path], str] | None = None
    resumable: bool = False
    sections: tuple[str, ...] = ()

    def load(self, source: str | os.PathLike | Mapping, scale: str | None = None,
             overrides: Sequence[str] = ()) -> Any:
        """The typed config of this experiment from a YAML file or a mapping (module
        docstring); ``scale`` picks the section (``None``: ``small`` when the file has scale
        sections). Errors name the file and the key path."""
        where = "config" if isinstance(source, Mapping) else f"config file {str(source)!r}"
        data = dict(source) if isinstance(source, Mapping) else read_yaml(source)
        try:
            section, used = self._section(data, scale)
            section = apply_overrides(section, list(overrides))
            if "scale" in section:
                raise ValueError(f"config key {_join(used, 'scale')!r}: set by --scale, not in "
                                 "the file")
            if used in SCALES and _has_field(self.schema, "scale"):
                section["scale"] = used
            return build(self.schema, section, used or "")
        except ValueError as err:  # (the value may come from an override: name them too)
            given = f" with --set {' '.join(overrides)}" if overrides else ""
            raise ValueError(f"{where}{given}: {err}") from None

    def _section(self, data: dict, scale: str | None) -> tuple[dict, str | None]:
        if scale is not None and scale not in SCALES:
            raise ValueError(f"--scale {scale!r}: expected one of {', '.join(SCALES)}")
        meant = data.get("command")
        if meant is not None and meant != self.name:
            raise ValueError(f"the file is for command {meant!r}, not {self.name!r}")
        if any(s in data for s in self.sections):
            return self._own_section(data, scale)
        if not any(s in data for s in SCALES):
            if scale is not None:
                raise ValueError(f"no {scale!r} section (--scale): the file has no scale "
                                 "sections")
            return {k: v for k, v in data.items() if k not in RESERVED}, None
        unknown = sorted(set(map(str, data)) - {*SCALES, *RESERVED})
        if unknown:
            raise ValueError(f"unknown top-level key {unknown[0]!r}; expected "
                             f"{', '.join(sorted({*SCALES, *RESERVED}))}")
        scale = scale or "small"
        section = data.get(scale)
        if not isinstance(section, dict):
            have = [s for s in SCALES if s in data]
            raise ValueError(f"no {scale!r} section (--scale); it has {have}")
        return dict(section), scale

    def __call__(self, config: Any, out: str | os.PathLike, progress: Progress | None = None,
                 resume: bool = False) -> dict:
        """Run the experiment on a config of its schema (e.g. from :meth:`load`)."""
        if not isinstance(config, self.schema):
            raise TypeError(f"config: expected {self.schema.__name__}, got "
                            f"{type(config).__name__}")
        if resume and not self.resumable:
            raise ValueError(f"--resume: experiment {self.chapter} {self.name!r} has no model "
                             "runs to continue")
        created = not Path(out).exists()
        folder = writable_folder(out)
        try:
            return self.run(config, folder, progress, resume=resume)
        except BaseException:  # a failed run leaves no empty folder of its own making
            if created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            raise

    def _own_section(self, data: dict, scale: str | None) -> tuple[dict, str]:
        """The section named like this experiment of a file with per-experiment sections."""
        if scale is not None:
            raise ValueError(f"scale {scale!r} (--scale): the file has no scale sections")
        unknown = sorted(set(map(str, data)) - {*self.sections, *RESERVED})
        if unknown:
            raise ValueError(f"unknown top-level key {unknown[0]!r}; expected "
                             f"{', '.join(sorted({*self.sections, *RESERVED}))}")
        if self.name not in data:
            have = [s for s in self.sections if s in data]
            raise ValueError(f"no {self.name!r} section; the file has {have}")
        section = data[self.name]
        if section is not None and not isinstance(section, dict):
            raise ValueError(f"config section {self.name!r}: got {section!r}; expected a "
                             "mapping of keys to values")
        return dict(section or {}), self.name


def _join(section: str | None, key: str) -> str:
    return f"{section}.{key}" if section else key


def _has_field(schema: type, name: str) -> bool:
    return dataclasses.is_dataclass(schema) and any(
        f.name == name for f in dataclasses.fields(schema))


def catalogue() -> dict[str, dict[str, Experiment]]:
    """``{chapter: {name: Experiment}}`` of every chapter package of :mod:`spinv.experiments`
    that exposes ``EXPERIMENTS``, chapters in :data:`CHAPTER_ORDER` (others after, by name)."""
    import spinv.experiments as package

    found: dict[str, dict[str, Experiment]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        experiments = getattr(module, "EXPERIMENTS", None)
        if experiments:
            found[info.name] = {e.name: e for e in experiments}
    rank = {c: i for i, c in enumerate(CHAPTER_ORDER)}
    return {c: found[c] for c in sorted(found, key=lambda c: (rank.get(c, len(rank)), c))}


def find(chapter: str, name: str) -> Experiment:
    """The experiment ``name`` of ``chapter``; ``ValueError`` listing what exists otherwise."""
    chapters = catalogue()
    if chapter not in chapters:
        raise ValueError(f"chapter {chapter!r}: expected one of {', '.join(chapters)}")
    if name not in chapters[chapter]:
        raise ValueError(f"experiment {name!r} of chapter {chapter!r}: expected one of "
                         f"{', '.join(chapters[chapter])}")
    return chapters[chapter][name]
