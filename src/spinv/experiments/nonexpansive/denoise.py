"""The experiment ``nonexpansive denoise`` (thesis Fig. 3.2, Table 3.1) of the protocol
(:mod:`spinv.experiments.protocol`): :func:`run_denoise` runs
:func:`~spinv.experiments.nonexpansive.denoising.denoising_experiment` with a
:class:`~spinv.experiments.nonexpansive.config.DenoiseConfig` and writes ``results.json``,
``results.md`` and ``psnr.png`` to its output folder (atomically, refreshed after every
method); every trained network leaves a run directory under ``OUT/runs/`` (checkpoint, config,
``log.jsonl``, summary, provenance), and running again with the same folder resumes a killed
run.
"""

from __future__ import annotations

from pathlib import Path

from spinv.experiments.nonexpansive.config import DenoiseConfig, settings_record, setup_device
from spinv.experiments.nonexpansive.denoising import (
    DenoiseHooks,
    denoising_experiment,
    write_json,
)
from spinv.experiments.protocol import Progress

__all__ = ["run_denoise"]


def _log(text: str) -> None:
    print(text, flush=True)


def run_denoise(config: DenoiseConfig, out: Path, progress: Progress | None = None,
                resume: bool = False) -> dict:
    """The experiment ``nonexpansive denoise`` (module docstring); ``progress(step, total,
    scalars)`` after every training step (stage: the network). An existing run directory is
    always resumed (``resume`` or not). Returns the content of ``results.json``."""
    from spinv.experiments.nonexpansive.report import denoise_markdown

    settings = settings_record(config)
    setup_device(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def on_save(partial: dict) -> None:
        write_json(out / "results.json", {"command": "denoise", "settings": settings,
                                          **partial})
        denoise_markdown(out, partial, config.sigma, done=False)

    hooks = DenoiseHooks(log=_log, progress=progress, on_save=on_save, runs_dir=out / "runs")
    r = denoising_experiment(config, hooks=hooks)
    payload = {"command": "denoise", "settings": settings, **r}
    write_json(out / "results.json", payload)
    denoise_markdown(out, r, config.sigma, done=True)
    return payload
