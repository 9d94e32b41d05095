"""Reports: tables with the measured numbers, escaped HTML, figures as PNG, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinv.report import collect_run, make_report, run_table


def _fake_run(root, name, psnrs, with_examples=True):
    run = root / name
    run.mkdir()
    (run / "config.yaml").write_text(
        "model: {name: postprocess-cnn}\nproblem: {kind: ct}\ndata: {n_train: 10}\n")
    (run / "summary.json").write_text(json.dumps(
        {"step": 4, "final_loss": 0.01, "validation": {"val_psnr": 25.5}}))
    (run / "log.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 5))
        + json.dumps({"step": 4, "val_psnr": 25.5}) + "\n" + '{"step": 5, "lo')  # torn line
    ev = run / "eval-test"
    ev.mkdir()
    per = [{"index": i, "psnr": p, "ssim": 0.8, "baseline_psnr": p - 3, "baseline_ssim": 0.7}
           for i, p in enumerate(psnrs)]
    mean = float(np.mean(psnrs))
    metrics = {"dataset": "ct-head", "split": "test", "rotate": "none", "roi": False,
               "model": "postprocess-cnn", "problem": "ct", "per_image": per,
               "summary": {"psnr": {"mean": mean, "std": float(np.std(psnrs, ddof=1))},
                           "ssim": {"mean": 0.8, "std": 0.0},
                           "baseline_psnr": {"mean": mean - 3, "std": 1.0},
                           "baseline_ssim": {"mean": 0.7, "std": 0.0}}}
    (ev / "metrics.json").write_text(json.dumps(metrics))
    if with_examples:
        k = 2
        np.savez(ev / "examples.npz", truth=np.random.rand(k, 8, 8),
                 recon=np.random.rand(k, 8, 8), baseline=np.random.rand(k, 8, 8),
                 psnr=np.array(psnrs[:k]), ssim=np.full(k, 0.8),
                 baseline_psnr=np.array(psnrs[:k]) - 3, baseline_ssim=np.full(k, 0.7))
    return run


def test_report_tables_and_figures(tmp_path):
    a = _fake_run(tmp_path, "equi<var>", [30.0, 31.0, 32.0])
    b = _fake_run(tmp_path, "ordinary", [28.0, 29.5, 27.0], with_examples=False)
    out = make_report([a, b], tmp_path / "rep")
    md = out["markdown"].read_text()
    assert "31.00 ± 1.00" in md  # mean ± sample std of [30, 31, 32]
    assert "28.17 ± 1.26" in md
    assert "25.50" in md and "ct-head, test" in md
    html_text = out["html"].read_text()
    assert "equi&lt;var&gt;" in html_text and "equi<var>" not in html_text
    names = sorted(p.name for p in out["figures"])
    assert names == ["examples_00.png", "psnr_violin.png", "ssim_violin.png",
                     "training_curves.png"]
    for p in out["figures"]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{p.name}" in md and f"figures/{p.name}" in html_text
    assert not list((tmp_path / "rep").glob("**/*.tmp"))


def test_collect_run_ignores_torn_log_line(tmp_path):
    r = collect_run(_fake_run(tmp_path, "r", [20.0, 21.0]))
    assert [e["step"] for e in r.log] == [1, 2, 3, 4, 4]
    head, rows = run_table([r])
    assert rows[0][head.index("PSNR")] == "20.50 ± 0.71"


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        make_report([], tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_report([tmp_path / "missing"], tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a training run"):
        make_report([tmp_path / "empty"], tmp_path / "o")
    bad = _fake_run(tmp_path, "bad", [1.0, 2.0])
    (bad / "eval-test" / "metrics.json").write_text("{oops")
    with pytest.raises(ValueError, match="metrics.json"):
        make_report([bad], tmp_path / "o")


def test_experiment_folder_expands_to_its_model_runs(tmp_path):
    from spinv.report import expand_experiments

    exp = tmp_path / "exp"
    for name in ("N2-C4", "N2-ordinary"):
        (exp / "models" / name).mkdir(parents=True)
        (exp / "models" / name / "config.yaml").write_text("model: {name: lpg}\n")
    (exp / "results.json").write_text("{}")
    other = tmp_path / "run"
    other.mkdir()
    assert expand_experiments([exp, other]) == [exp / "models" / "N2-C4",
                                                exp / "models" / "N2-ordinary", other]
