"""Concurrency and interrupted-write cases: two writers on one output, a training killed
(SIGKILL) or interrupted (Ctrl-C) mid-run and then resumed. These classify themselves."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from cases import CASES, Case

STEPS = 1500  # ~20 s of a 16x16 denoiser on one thread: long enough to be interrupted
LONG = (f"--set train.steps={STEPS} --set train.checkpoint_every=50 "
        "--set train.log_every=1")


def _one_line_error(stderr: str, lead: tuple[str, ...] = ("error:",)) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return (sum(ln.startswith(lead) for ln in lines) == 1
            and all(ln.startswith((*lead, "warning:")) for ln in lines))


def _log_steps(run: Path) -> list[int]:
    steps = []
    for line in (run / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "step" in rec and "loss" in rec:
            steps.append(int(rec["step"]))
    return steps


def _run_consistent(run: Path, seed: int | None, steps: int) -> str:
    """'' if the run folder is one clean run of ``steps`` steps (and seed), else the problem."""
    import yaml

    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        summary = json.loads((run / "summary.json").read_text())
        latest = json.loads((run / "latest.json").read_text())
        meta = json.loads((run / latest["checkpoint"] / "meta.json").read_text())
        logged = _log_steps(run)
    except (OSError, ValueError, KeyError) as err:
        return f"unreadable run: {err}"
    if seed is not None and (cfg["train"]["seed"] != seed
                             or meta["config"]["train"]["seed"] != seed):
        return f"mixed seeds: config {cfg['train']['seed']}, checkpoint " \
               f"{meta['config']['train']['seed']}, expected {seed}"
    if summary.get("step", summary.get("steps")) != steps or latest["step"] != steps:
        return f"summary/latest step {summary.get('step')}/{latest['step']} != {steps}"
    if logged != sorted(set(logged)) or (logged and logged[-1] != steps):
        return "log steps not one increasing sequence ending at the last step"
    return ""


def _two_writers(cdir, results, stderrs, stdouts, names) -> tuple[str, str]:
    codes = [c for c, _ in results]
    if any(t for _, t in results):
        return "timeout", str(codes)
    if any("Traceback" in s for s in stderrs):
        return "traceback", str(codes)
    if sorted(codes) != [0, 2]:
        return ("data-loss" if codes == [0, 0] else "aborted"), f"exit codes {codes}"
    loser = stderrs[codes.index(2)]
    if not _one_line_error(loser) or "run" not in loser:
        return "not-one-line", loser[-200:]
    winner_seed = (1, 2)[codes.index(0)]
    problem = _run_consistent(cdir / "run", winner_seed, STEPS)
    return ("data-loss", problem) if problem else ("ok", f"exit codes {codes}")


def _two_files(cdir, results, stderrs, stdouts, names) -> tuple[str, str]:
    import numpy as np

    codes = [c for c, _ in results]
    if any("Traceback" in s for s in stderrs):
        return "traceback", str(codes)
    try:
        with np.load(cdir / "out.npz") as z:
            z["y"].sum()
    except Exception as err:  # noqa: BLE001 - any failure to read is data loss
        return "data-loss", f"{codes}: {err}"
    leftovers = [p.name for p in cdir.iterdir() if p.name != "out.npz"]
    if leftovers:
        return "modified", f"temporaries left: {leftovers}"
    return ("ok", str(codes)) if all(c in (0, 2) for c in codes) else ("aborted", str(codes))


def _resume_after(sig_name: str):
    def check(cdir, results, stderrs, stdouts, names) -> tuple[str, str]:
        from run_campaign import spawn, wait

        (code, timed_out), = results
        if "Traceback" in stderrs[0]:
            return "traceback", f"exit {code}"
        if sig_name == "INT" and (code != 130 or not _one_line_error(
                stderrs[0], ("error:", "interrupted:"))):
            return "aborted", f"Ctrl-C gave exit {code}: {stderrs[0][-200:]}"
        argv = ["train", f"{names['fx']}/train-ok.yaml", "--out", str(cdir / "run"),
                "--resume", *LONG.split()]
        pid, _, err = spawn(argv, cdir, "resume")
        code2, t2 = wait(pid, time.monotonic() + 240)
        text = err.read_text(errors="replace")
        if t2 or code2 != 0:
            return ("traceback" if "Traceback" in text else "aborted"), \
                f"resume exit {code2}: {text[-300:]}"
        problem = _run_consistent(cdir / "run", 0, STEPS)
        return ("data-loss", problem) if problem else ("ok", f"killed exit {code}, resumed")
    return check


def _any_clean(cdir, results, stderrs, stdouts, names) -> tuple[str, str]:
    codes = [c for c, _ in results]
    if any(t for _, t in results):
        return "timeout", str(codes)
    if any("Traceback" in s for s in stderrs):
        return "traceback", str(codes)
    for c, s in zip(codes, stderrs, strict=True):
        if c not in (0, 2) or (c == 2 and not _one_line_error(s)):
            return "aborted", f"{codes}: {s[-200:]}"
    return "ok", str(codes)


def concurrency_and_faults() -> None:
    train = "train {fx}/train-ok.yaml --out {case}/run " + LONG
    CASES.append(Case("train:concurrency:two-writers", "train", "concurrency",
                      [f"{train} --seed 1".split(), f"{train} --seed 2".split()],
                      check=_two_writers, expect="ok", timeout=240))
    CASES.append(Case("train:concurrency:train-and-evaluate", "train", "concurrency",
                      [f"{train}".split(),
                       "evaluate {case}/run --out {case}/ev --n-images 2".split()],
                      check=_any_clean, expect="ok", timeout=240))
    sim = "simulate --problem ct --input {fx}/image32.npy --angles 30 --out {case}/out.npz"
    CASES.append(Case("simulate:concurrency:two-writers", "simulate", "concurrency",
                      [sim.split(), (sim + " --seed 1").split()], check=_two_files,
                      expect="ok"))
    toy = "nonexpansive toy {fx}/nonexpansive-ok.yaml --out {case}/toy"
    CASES.append(Case("nonexpansive-toy:concurrency:two-writers", "nonexpansive toy",
                      "concurrency", [toy.split(), (toy + " --seed 3").split()],
                      check=_any_clean, expect="ok", timeout=240))
    for sig_name, sig in (("KILL", signal.SIGKILL), ("INT", signal.SIGINT)):
        CASES.append(Case(f"train:fault:{sig_name.lower()}-then-resume", "train", "fault",
                          [train.split()], check=_resume_after(sig_name), expect="ok",
                          interrupt_after=4.0, interrupt_signal=sig, timeout=240))
    CASES.append(Case("train:concurrency:resume-while-running", "train", "concurrency",
                      [f"{train}".split(), f"{train} --resume".split()],
                      check=_any_clean, expect="ok", timeout=240))
