"""Print the README's model-zoo table from the shipped entries' provenance (no figure is typed by
hand: each comes from ``release_metrics``, measured at release and re-measured by
``spinv models verify``).

    python tools/zoo_table.py > /tmp/zoo.md
"""

from __future__ import annotations

from spinv.zoo import list_models


def _problem(p: dict) -> str:
    prob = p.get("problem", {})
    kind = prob.get("kind")
    if p.get("kind") == "sampling-pattern":
        return f"MRI {prob.get('size')}², σ {prob.get('noise')}, {prob.get('parametrisation')}"
    size = prob.get("image_size")
    if kind == "ct":
        geo = "fan" if prob.get("fan") is not None else "parallel"
        photons = prob.get("photons")
        return f"CT {size}², {prob.get('n_angles')} views ({geo}), {photons:.0e} photons"
    if kind == "mri":
        mask = prob.get("mask") or {}
        return f"MRI {size}², {mask.get('pattern')} {mask.get('rate')}, σ {prob.get('noise_sigma')}"
    return f"denoising, σ {prob.get('noise_sigma')} (any operator, any size)"


def _figure(p: dict) -> str:
    rm = p.get("release_metrics", {})
    if p.get("kind") == "sampling-pattern":
        r = rm["results"]
        base = max((v for k, v in r.items() if k != "learned"), key=lambda v: v["psnr"])
        name = next(k for k, v in r.items() if v is base)
        return (f"{r['learned']['psnr']:.2f} / {r['learned']['ssim']:.3f} (rate "
                f"{r['learned']['sampling_rate']:.3f}); best baseline {name.replace('_', ' ')} "
                f"{base['psnr']:.2f} / {base['ssim']:.3f}")
    s = rm["summary"]
    return (f"{s['psnr']['mean']:.2f} / {s['ssim']['mean']:.3f} (input/analytic "
            f"{s['baseline_psnr']['mean']:.2f} / {s['baseline_ssim']['mean']:.3f})")


def _training(p: dict) -> str:
    cpu = p.get("cpu_seconds")
    cpu_s = f"{cpu / 60:.0f} CPU-min" if cpu else "CPU time not recorded"
    if p.get("kind") == "sampling-pattern":
        return f"{p.get('lbfgsb_iterations')} L-BFGS-B iterations, {cpu_s}"
    steps, sched = p.get("steps"), p.get("scheduled_steps")
    done = "" if steps == sched else f" of {sched}"
    return f"{steps}{done} steps, {cpu_s}"


def main() -> None:
    print("| name | kind | problem | training (1 thread, float32) | held-out test PSNR / SSIM "
          "at release |")
    print("|---|---|---|---|---|")
    for e in list_models():
        p = e.provenance
        kind = p.get("kind") or p.get("config", {}).get("model", {}).get("name", "model")
        group = p.get("config", {}).get("model", {}).get("group")
        kind = f"{kind} ({group})" if group else kind
        print(f"| `{e.name}` | {kind} | {_problem(p)} | {_training(p)} | {_figure(p)} |")


if __name__ == "__main__":
    main()
