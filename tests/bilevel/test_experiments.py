"""The chapter-1 experiments run end to end on tiny configs (``spinv experiment run sampling
NAME``)."""

import json

import numpy as np

from spinv.cli import main


def _run(name: str, config, out) -> int:
    return main(["experiment", "run", "sampling", name, str(config), "--out", str(out),
                 "--quiet"])

TINY = """base:
  size: {size}
  n_train: 2
  n_test: 4
  maxiter: 2
  alpha_maxiter: 2
  baselines: []
"""


def test_beta_sweep(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(size=16) + "betas: [1.0e-1]\n")
    assert _run("beta-sweep", cfg, tmp_path / "o") == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(s["rows"]) == 1 and (tmp_path / "o" / "beta_sweep.png").exists()
    assert all(0 < r["sampling_rate"] <= 1 and 0 < r["ssim"] <= 1 for r in s["rows"])


def test_density_from_files(tmp_path):
    p = np.zeros((16, 16))
    p[6:10, 6:10] = 1
    np.save(tmp_path / "a.npy", p)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(size=16) + f"patterns: {{a: {tmp_path / 'a.npy'}}}\n")
    assert _run("density", cfg, tmp_path / "o") == 0
    np.save(tmp_path / "b.npy", np.ones((16, 16)))
    cfg.write_text(TINY.format(size=16) + f"patterns: {{a: {tmp_path / 'a.npy'}, "
                   f"b: {tmp_path / 'b.npy'}}}\n")
    assert _run("density", cfg, tmp_path / "o") == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    central, uniform = s["rows"][0]["central_mass"], s["rows"][1]["central_mass"]
    assert central > 0.3 > 0.1 > uniform  # the centred block is strongly peaked


def test_unknown_experiment_key_is_an_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("betaz: [1]\n")
    assert _run("beta-sweep", cfg, tmp_path) == 2
    assert "betaz" in capsys.readouterr().err


def test_density_learns_labelled_points_and_groups_figures(tmp_path):
    p = np.zeros((16, 16))
    p[6:10, 6:10] = 1
    np.save(tmp_path / "a.npy", p)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(size=16) + f"patterns: {{a: {tmp_path / 'a.npy'}}}\n"
                   "learn: {hi: {regulariser: tv, beta: 0.1}}\n"
                   "figures: {one: [a], both: [a, hi]}\n")
    assert _run("density", cfg, tmp_path / "o") == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [r["pattern"] for r in s["rows"]] == ["a", "hi"]
    assert s["rows"][1]["beta"] == 0.1 and 0 < s["rows"][1]["sampling_rate"] <= 1
    assert (tmp_path / "o" / "one.png").exists() and (tmp_path / "o" / "both.png").exists()
    assert (tmp_path / "o" / "hi" / "pattern.npy").exists()
    cfg.write_text(TINY.format(size=16) + f"patterns: {{a: {tmp_path / 'a.npy'}}}\n"
                   "figures: {one: [a, nope]}\n")
    assert _run("density", cfg, tmp_path / "o2") == 2


def test_training_size_rows_and_figure(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(size=16).replace("baselines: []", "baselines: [low_pass]")
                   + "n_train: [1, 2]\n")
    assert _run("training-size", cfg, tmp_path / "o") == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [r["n_train"] for r in s["rows"]] == [1, 2]
    assert all(r["effective_solves"] > 0 and 0 < r["ssim"] <= 1 for r in s["rows"])
    for r in s["rows"]:  # the baseline is built at each point's own learned rate
        assert abs(r["baselines"]["low_pass"]["sampling_rate"] - r["sampling_rate"]) < 0.01
    assert (tmp_path / "o" / "training_size.png").exists()
