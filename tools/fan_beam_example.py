"""The README's fan-beam CT example (issue 17.3), through the CLI: ``spinv simulate --geometry
fan`` of the held-out CT slice ``examples/ct_slice.dcm`` (ct-head test slice 0), then ``spinv
reconstruct`` -- at 64x64 (50 views) with FBP, TV and TGV (alpha tuned on bundled *training*
images) and PnP-ADMM with the shipped DnCNN denoiser; at 32x32 (30 views) with FBP, TV and the
shipped fan-beam learned primal-dual ``fan32-lpd``. Prints the PSNR/SSIM lines and writes the
figure ``docs/fan-beam-ct.png`` (one row per size). Usage:
``python tools/fan_beam_example.py [WORK_DIR]``.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # size: (views, methods)
    64: (50, [("fbp", []), ("tv", []), ("tgv", []),
              ("pnp-admm", ["--model", "denoise-dncnn-s0.05", "--iterations", "30"])]),
    32: (30, [("fbp", []), ("tv", []), ("lpd", ["--model", "fan32-lpd"])]),
}


def _run(argv: list[str]) -> str:
    from spinv.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"spinv {' '.join(argv)} failed ({code})")
    print("$ spinv " + " ".join(argv) + "\n" + buf.getvalue().strip())
    return buf.getvalue()


def _row(work: Path, size: int) -> list[tuple[str, np.ndarray, str | None]]:
    """Simulate at ``size`` and reconstruct with that size's methods: the figure's panels."""
    views, methods = SETTINGS[size]
    npz = work / f"fan{size}.npz"
    _run(["simulate", "--problem", "ct", "--input", str(ROOT / "examples" / "ct_slice.dcm"),
          "--size", str(size), "--angles", str(views), "--geometry", "fan", "--out", str(npz)])
    panels = [(f"ground truth {size}x{size}", np.load(npz)["ground_truth"][0, 0], None)]
    for method, extra in methods:
        out = work / f"{method}{size}.npy"
        text = _run(["reconstruct", "--measurements", str(npz), "--method", method, *extra,
                     "--out", str(out), "--force"])
        m = re.search(r"PSNR ([0-9.]+) dB\s+SSIM ([0-9.]+)", text)
        name = method if not extra or method != "lpd" else f"{method} ({extra[1]})"
        panels.append((name, np.squeeze(np.load(out)),
                       f"{float(m.group(2)):.3f}\n{float(m.group(1)):.2f} dB"))
    return panels


def main(work: Path) -> None:
    import torch

    from spinv.plotting import image_panel, pyplot

    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    rows = [_row(work, size) for size in SETTINGS]
    plt = pyplot()
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.2 * ncols, 2.45 * len(rows)),
                             squeeze=False)
    for i, panels in enumerate(rows):
        for j in range(ncols):
            if j >= len(panels):
                axes[i, j].axis("off")
                continue
            name, image, label = panels[j]
            image_panel(axes[i, j], image, label)
            axes[i, j].set_title(name, fontsize=8)
    fig.suptitle("fan-beam CT, held-out slice: equiangular detector, 360 deg, source 2N, "
                 "detector 4N from the source, 1e4 photons (SSIM / PSNR)", fontsize=8)
    fig.tight_layout()
    target = ROOT / "docs" / "fan-beam-ct.png"
    fig.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
