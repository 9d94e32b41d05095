"""The README's fan-beam CT example (issue 17.3), through the CLI: ``spinv simulate --geometry
fan`` of the held-out CT slice ``examples/ct_slice.dcm`` (ct-head test slice 0) at 64x64, then
``spinv reconstruct`` with FBP, TV (alpha tuned on bundled *training* images), TGV and PnP-ADMM
with the shipped DnCNN denoiser; prints the PSNR/SSIM lines and writes the figure
``docs/fan-beam-ct.png``. Usage: ``python tools/fan_beam_example.py [WORK_DIR]``.
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
METHODS = [("fbp", []), ("tv", []), ("tgv", []),
           ("pnp-admm", ["--model", "denoise-dncnn-s0.05", "--iterations", "30"])]


def _run(argv: list[str]) -> str:
    from spinv.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"spinv {' '.join(argv)} failed ({code})")
    print("$ spinv " + " ".join(argv) + "\n" + buf.getvalue().strip())
    return buf.getvalue()


def main(work: Path) -> None:
    import torch

    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    npz = work / "fan.npz"
    _run(["simulate", "--problem", "ct", "--input", str(ROOT / "examples" / "ct_slice.dcm"),
          "--size", "64", "--geometry", "fan", "--out", str(npz)])
    panels = [("ground truth", np.load(npz)["ground_truth"][0, 0], None)]
    for method, extra in METHODS:
        out = work / f"{method}.npy"
        text = _run(["reconstruct", "--measurements", str(npz), "--method", method, *extra,
                     "--out", str(out), "--force"])
        m = re.search(r"PSNR ([0-9.]+) dB\s+SSIM ([0-9.]+)", text)
        panels.append((method, np.load(out)[0, 0] if np.load(out).ndim == 4 else np.load(out),
                       f"{float(m.group(2)):.3f}\n{float(m.group(1)):.2f} dB"))
    from spinv.plotting import image_panel, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    for ax, (name, image, label) in zip(axes, panels, strict=True):
        image_panel(ax, np.squeeze(image), label)
        ax.set_title(name, fontsize=9)
    fig.suptitle("fan-beam CT 64x64: 50 views over 360 deg, equiangular detector (93 bins), "
                 "source 128 px, detector 256 px, 1e4 photons", fontsize=8)
    fig.tight_layout()
    target = ROOT / "docs" / "fan-beam-ct.png"
    fig.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
