"""Reports of training/evaluation runs: tables, figures, Markdown and HTML.

:func:`make_report` collects, for each run directory, the training log (``log.jsonl``), the
summary (``summary.json``), the config and every evaluation found below it (``metrics.json``
written by ``spinv evaluate``), and writes ``report.md`` and ``report.html`` with

- a table of runs: model, problem, training-set size, steps, final training loss, validation
  PSNR, and for each evaluation the mean ± standard deviation of PSNR and SSIM (thesis appendix
  "Definitions of performance measures"), next to the analytic baseline;
- training curves (loss per step, validation PSNR);
- violin plots of the per-image PSNR and SSIM across runs (the presentation of Figures 2.7-2.8
  of the thesis; as there, the top and bottom 5 % of values are omitted from each violin);
- example reconstructions with their PSNR and SSIM printed on them (as in Figure 2.9).

All files are written atomically (temporary name, then :func:`os.replace`).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinv.atomic import atomic_write_text
from spinv.plotting import example_figure, pyplot, save_figure, violin_figure


def curves_figure(runs: list[RunInfo]) -> Any:
    """Training loss (log scale) and validation PSNR against the step, one line per run."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.3))
    for r in runs:
        tr = [(e["step"], e["loss"]) for e in r.log if "loss" in e and e["loss"] is not None]
        va = [(e["step"], e["val_psnr"]) for e in r.log if e.get("val_psnr") is not None]
        if tr:
            s, v = zip(*tr, strict=True)
            a1.plot(s, v, label=r.label, lw=1)
        if va:
            s, v = zip(*va, strict=True)
            a2.plot(s, v, marker="o", ms=3, label=r.label)
    a1.set_yscale("log")
    a1.set_xlabel("step")
    a1.set_ylabel("training loss (MSE)")
    a2.set_xlabel("step")
    a2.set_ylabel("validation PSNR [dB]")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    fig.tight_layout()
    return fig


@dataclass
class RunInfo:
    """What :func:`collect_run` found in one directory."""

    path: Path
    label: str
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)  # (dir, metrics dict)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {str(path)!r}: {err}") from None


def collect_run(path: str | os.PathLike) -> RunInfo:
    """Read a run directory (or an evaluation directory holding ``metrics.json``)."""
    import yaml

    from spinv.training.logging import read_log  # the run report reads training logs

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"run directory {str(p)!r} does not exist")
    info = RunInfo(path=p, label=p.name or str(p))
    if (p / "config.yaml").is_file():
        try:
            info.config = yaml.safe_load((p / "config.yaml").read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"cannot read {str(p / 'config.yaml')!r}: {err}") from None
    if (p / "summary.json").is_file():
        info.summary = _read_json(p / "summary.json")
    info.log = read_log(p / "log.jsonl")
    found = sorted(set(p.glob("metrics.json")) | set(p.glob("*/metrics.json"))
                   | set(p.glob("*/*/metrics.json")))
    for m in found:
        info.evaluations.append((m.parent, _read_json(m)))
    # a training run: its marker or checkpoints, or (runs of earlier versions) a config with a
    # log; a folder that merely holds a config.yaml of the user's is not reported on
    from spinv.training.rundir import is_run

    if not (is_run(p) or (info.config and info.log) or info.evaluations):
        raise ValueError(
            f"{str(p)!r} holds neither a training run (config.yaml, log.jsonl) nor an "
            "evaluation (metrics.json)"
        )
    return info


def _fmt(stat: dict | None, digits: int) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _eval_label(run: RunInfo, edir: Path, m: dict) -> str:
    rot = m.get("rotate", "none")
    tags = [Path(str(m.get("dataset", "?"))).name, str(m.get("split", ""))]
    if rot not in ("none", None):
        tags.append(f"rot={rot}")
    if m.get("roi"):
        tags.append("ROI")
    return f"{run.label} [{', '.join(t for t in tags if t)}]"


def run_table(runs: list[RunInfo]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table (one row per evaluation, or per run without one)."""
    head = ["run", "model", "problem", "N train", "steps", "final loss", "val PSNR",
            "evaluation", "PSNR", "SSIM", "baseline PSNR", "baseline SSIM"]
    rows = []
    for r in runs:
        cfg = r.config
        model = (cfg.get("model") or {}).get("name", "–")
        problem = (cfg.get("problem") or {}).get("kind", "–")
        ntrain = (cfg.get("data") or {}).get("n_train", "–")
        steps = r.summary.get("step", "–")
        loss = r.summary.get("final_loss")
        val = (r.summary.get("validation") or {}).get("val_psnr")
        base = [r.label, str(model), str(problem), "all" if ntrain is None else str(ntrain),
                str(steps), "–" if loss is None else f"{loss:.4g}",
                "–" if val is None else f"{val:.2f}"]
        if not r.evaluations:
            rows.append(base + ["–"] * 5)
        for edir, m in r.evaluations:
            s = m.get("summary", {})
            if model == "–":
                base[1], base[2] = str(m.get("model", "–")), str(m.get("problem", "–"))
            rows.append(base + [_eval_label(r, edir, m).split(" [", 1)[-1].rstrip("]"),
                                _fmt(s.get("psnr"), 2), _fmt(s.get("ssim"), 4),
                                _fmt(s.get("baseline_psnr"), 2), _fmt(s.get("baseline_ssim"), 4)])
    return head, rows


def _markdown_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def expand_experiments(paths: list[str | os.PathLike]) -> list[Path]:
    """``paths`` with each experiment output folder (no run of its own, model runs in
    ``models/<name>``, as written by ``spinv equivariance``/``spinv demo``) replaced by its
    model runs."""
    out: list[Path] = []
    for p in map(Path, paths):
        models = sorted(m for m in (p / "models").glob("*") if (m / "config.yaml").is_file())
        own = (p / "config.yaml").is_file() or (p / "log.jsonl").is_file()
        out.extend(models if models and not own else [p])
    return out


def make_report(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike,
                n_examples: int = 3) -> dict:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for ``run_dirs`` (runs,
    evaluations, or experiment folders: :func:`expand_experiments`) into ``out_dir``; returns
    ``{"markdown", "html", "figures"}`` paths."""
    if not run_dirs:
        raise ValueError("run_dirs: expected at least one run or evaluation directory")
    runs = [collect_run(p) for p in expand_experiments(run_dirs)]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):  # disambiguate equal folder names
        for r in runs:
            r.label = str(r.path)
    out = Path(out_dir)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []  # (caption, relative path)
    if any(r.log for r in runs):
        save_figure(curves_figure([r for r in runs if r.log]), figdir / "training_curves.png")
        figures.append(("Training loss and validation PSNR", "figures/training_curves.png"))
    psnr_groups: dict[str, list[float]] = {}
    ssim_groups: dict[str, list[float]] = {}
    example_figs = []
    for r in runs:
        for edir, m in r.evaluations:
            lab = _eval_label(r, edir, m)
            psnr_groups[lab] = [e["psnr"] for e in m.get("per_image", [])]
            ssim_groups[lab] = [e["ssim"] for e in m.get("per_image", [])]
            npz = edir / "examples.npz"
            if npz.is_file() and n_examples > 0:
                try:
                    with np.load(npz, allow_pickle=False) as z:
                        ex = {k: z[k][:n_examples] for k in z.files}
                except (OSError, ValueError) as err:
                    raise ValueError(f"cannot read {str(npz)!r}: {err}") from None
                name = f"examples_{len(example_figs):02d}.png"
                save_figure(example_figure(ex, title=lab), figdir / name)
                example_figs.append((f"Examples: {lab} (SSIM top, PSNR bottom)",
                                     f"figures/{name}"))
    if psnr_groups:
        save_figure(violin_figure(psnr_groups, "PSNR [dB]"), figdir / "psnr_violin.png")
        save_figure(violin_figure(ssim_groups, "SSIM"), figdir / "ssim_violin.png")
        figures += [("Per-image PSNR (violins trimmed at 5 %/95 %)", "figures/psnr_violin.png"),
                    ("Per-image SSIM (violins trimmed at 5 %/95 %)", "figures/ssim_violin.png")]
    figures += example_figs
    head, rows = run_table(runs)
    md = ["# spinv report", "", f"Runs: {', '.join(html.escape(r.label) for r in runs)}", "",
          "PSNR/SSIM: mean ± standard deviation over the evaluated images; baseline = FBP "
          "(CT), zero filling (MRI) or the noisy image (denoising).", "",
          _markdown_table(head, rows), ""]
    for cap, rel in figures:
        md += [f"## {cap}", "", f"![{cap}]({rel})", ""]
    hparts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>spinv report</title>",
              "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
              "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
              "img{max-width:100%}</style></head><body><h1>spinv report</h1>",
              "<p>PSNR/SSIM: mean ± standard deviation over the evaluated images.</p>",
              _html_table(head, rows)]
    for cap, rel in figures:
        hparts.append(f"<h2>{html.escape(cap)}</h2><img src='{html.escape(rel)}' "
                      f"alt='{html.escape(cap)}'>")
    hparts.append("</body></html>")
    atomic_write_text(out / "report.md", "\n".join(md))
    atomic_write_text(out / "report.html", "\n".join(hparts))
    return {"markdown": out / "report.md", "html": out / "report.html",
            "figures": [out / rel for _, rel in figures]}
