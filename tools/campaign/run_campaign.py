"""Re-run the issue-15 bad-input, fault and concurrency campaign against the ``spinv`` CLI.

Every case (``tools/campaign/cases.py``) is one ``spinv`` command line with one hostile input
(missing/empty/corrupt/wrong-type file, bad number, bad config, bad output path, two writers,
an interrupted write). Each runs in a child process forked from this one after ``spinv.cli`` is
imported (the console script's ``sys.exit(main())``, without paying 3 s of imports per case),
with one thread, in its own empty working directory, under a timeout. The result is classified:

``ok-error``      exit 2, exactly one ``error:`` line (``warning:`` lines allowed), naming the
                  option or file of the case, nothing written or changed;
``ok``            a case expected to succeed (``expect="ok"``) that exited 0;
``traceback``     a Python traceback on stderr/stdout;
``aborted``       a bare ``Aborted.`` or an exit code other than 0 and 2;
``unnamed``       one error line that names neither the option nor the file;
``not-one-line``  exit 2 but no, or several, ``error:`` lines / other stderr noise;
``timeout``       killed after the case's time limit (a hang, or bad input accepted and run);
``exit0``         exit 0 on bad input: a possible silent wrong answer, to inspect;
``modified``      the case failed but left new/changed files, or changed a fixture;
``data-loss``     exit 0 on bad input having changed a file that existed before (the user's),
                  or (concurrency/fault cases) a run mixed, truncated or not resumable.

Usage::

    OMP_NUM_THREADS=1 nohup .venv/bin/python tools/campaign/run_campaign.py \
        [--only SUBSTRING] [--timeout 60] [--out results/campaign] > /tmp/campaign.log 2>&1 &

Writes ``OUT/campaign.json`` (every case: argv, exit code, class, stderr tail, seconds) and
``OUT/summary.md`` (counts per class and per command).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parents[1]

CLASSES = ("ok-error", "ok", "traceback", "aborted", "unnamed", "not-one-line", "timeout",
           "exit0", "modified", "data-loss")


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (sha256 or 'dir', mode) of everything under ``root``."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.name == ".lock":  # a run's OS lock file: holds the writer's pid, not data
            continue
        try:
            st = p.lstat()
            if p.is_symlink() or not p.is_file():
                out[rel] = ("dir" if p.is_dir() else "other", st.st_mode)
            else:
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
        except OSError:
            out[rel] = ("unreadable", 0)
    return out


def _child(argv: list[str], cwd: Path, out: Path, err: Path) -> None:
    """Body of a forked child: run ``spinv ARGV`` as the console script would, then _exit."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(cwd)
        fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fo, 1)
        os.dup2(fe, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        from spinv.cli import main

        try:
            result = main(argv)
            code = result if isinstance(result, int) else 0
        except SystemExit as ex:
            code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
        except BaseException:  # what the interpreter would print for an uncaught exception
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def spawn(argv: list[str], cwd: Path, tag: str) -> tuple[int, Path, Path]:
    out, err = cwd.parent / f"{tag}.stdout", cwd.parent / f"{tag}.stderr"
    pid = os.fork()
    if pid == 0:
        _child(argv, cwd, out, err)
    return pid, out, err


def wait(pid: int, deadline: float, interrupt_after: float | None = None,
         sig: int = signal.SIGKILL) -> tuple[int | None, bool]:
    """Wait for ``pid`` until ``deadline``; (exit code or None if killed by the timeout, timed
    out). ``interrupt_after``: send ``sig`` to the child after that many seconds (fault cases)."""
    start = time.monotonic()
    sent = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFEXITED(status):
                return os.WEXITSTATUS(status), False
            return -os.WTERMSIG(status), False
        now = time.monotonic()
        if interrupt_after is not None and not sent and now - start >= interrupt_after:
            os.killpg(pid, sig)
            sent = True
        if now > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None, True
        time.sleep(0.05)


def classify(case, code: int | None, timed_out: bool, stderr: str, stdout: str,
             changed: list[str], names: dict, before: dict) -> str:
    """The class of one result (see the module docstring)."""
    if timed_out:
        return "timeout"
    if "Traceback (most recent call last)" in stderr + stdout:
        return "traceback"
    if case.expect == "ok":
        return "ok" if code == 0 else ("aborted" if code not in (2,) else "unexpected-error")
    if case.expect == "any" and code == 0:
        return "ok"
    if code == 0:
        return "data-loss" if any(not c.startswith("FIXTURE:") and c in before for c in changed) \
            else "exit0"
    if code != 2 or "Aborted." in stderr:
        return "aborted"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    noise = [ln for ln in lines if not ln.startswith(("error:", "warning:"))]
    if len(errors) != 1 or noise:
        return "not-one-line"
    needles = [n.format(**names) for n in case.needles]
    if needles and not any(n in errors[0] for n in needles):
        return "unnamed"
    if changed:
        return "modified"
    return "ok-error"


def run_case(case, root: Path, fixtures: Path, fixture_snap: dict, timeout: float) -> dict:
    cdir = root / "cases" / case.id
    cdir.mkdir(parents=True)
    names = {"fx": str(fixtures), "out": str(cdir / "out"), "case": str(cdir)}
    if case.setup is not None:
        case.setup(cdir, fixtures)
    before = snapshot(cdir)
    argvs = [[a.format(**names) for a in argv] for argv in case.argvs]
    t0 = time.monotonic()
    procs = [spawn(argv, cdir, f"{case.id}.{i}") for i, argv in enumerate(argvs)]
    results = [wait(pid, t0 + timeout, case.interrupt_after, case.interrupt_signal)
               for pid, _, _ in procs]
    seconds = time.monotonic() - t0
    stderrs = [e.read_text(errors="replace") for _, _, e in procs]
    stdouts = [o.read_text(errors="replace") for _, o, _ in procs]
    after = snapshot(cdir)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    fx_after = snapshot(fixtures) if case.touches_fixtures else fixture_snap
    changed += sorted(f"FIXTURE:{k}" for k in set(fixture_snap) | set(fx_after)
                      if fixture_snap.get(k) != fx_after.get(k))
    if case.check is not None:  # multi-process / fault cases classify themselves
        cls, note = case.check(cdir, results, stderrs, stdouts, names)
    else:
        (code, timed_out), = results
        cls = classify(case, code, timed_out, stderrs[0], stdouts[0], changed, names, before)
        note = ""
    return {"id": case.id, "command": case.command, "kind": case.kind, "argv": argvs,
            "expect": case.expect, "class": cls, "note": note,
            "exit": [c for c, _ in results], "seconds": round(seconds, 2),
            "stderr": [s[-1500:] for s in stderrs], "stdout_tail": [s[-300:] for s in stdouts],
            "changed": changed[:20]}


def preload() -> None:
    """Import every spinv module now, so that all cases run the code as it was when the
    campaign started (other people may edit the tree meanwhile) and no child pays for
    imports."""
    import importlib
    import pkgutil

    import spinv

    for info in pkgutil.walk_packages(spinv.__path__, "spinv."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - report, keep going
            print(f"preload: {info.name}: {type(err).__name__}: {err}", file=sys.stderr)
    for name in ("scipy.sparse", "skimage.color", "imageio.v3", "tifffile", "pydicom",
                 "nibabel", "h5py", "matplotlib.pyplot", "tqdm"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            pass


def reclassify(path: Path, fixtures: Path) -> list[dict]:
    """The records of an earlier campaign JSON classified again with the current rules (the
    setups are replayed into a scratch folder for the snapshot of pre-existing files)."""
    from cases import all_cases

    cases = {c.id: c for c in all_cases()}
    records = json.loads(path.read_text())["cases"]
    scratch = Path(tempfile.mkdtemp(prefix="spinv-reclassify-"))
    for rec in records:
        case = cases.get(rec["id"])
        if case is None or case.check is not None:
            continue
        cdir = scratch / rec["id"]
        cdir.mkdir()
        names = {"fx": str(fixtures), "out": str(cdir / "out"), "case": str(cdir)}
        if case.setup is not None:
            case.setup(cdir, fixtures)
        before = snapshot(cdir)
        code = rec["exit"][0]
        changed = [c for c in rec["changed"] if not c.endswith(".lock")]
        if rec["class"] == "traceback":  # the stored stderr tail may have lost the header
            continue
        rec["class"] = classify(case, code, code is None, rec["stderr"][0], "",
                                changed, _names_of(rec, names), before)
    return records


def _names_of(rec: dict, names: dict) -> dict:
    """The placeholder values the record was run with (its case folder and fixtures)."""
    joined = " ".join(rec["argv"][0])
    marker = "/cases/" + rec["id"]
    if marker in joined:
        root = joined.split(marker)[0].split()[-1]
        return {"fx": root + "/fx", "out": root + marker + "/out", "case": root + marker}
    fx = [a for a in rec["argv"][0] if "/fx/" in a]
    if fx:
        root = fx[0].split("/fx/")[0]
        return {"fx": root + "/fx", "out": root + marker + "/out", "case": root + marker}
    return names


def write_summary(records: list[dict], out: Path, meta: dict, name: str = "summary.md") -> None:
    from collections import Counter

    total = Counter(r["class"] for r in records)
    commands = sorted({r["command"] for r in records})
    classes = [c for c in CLASSES if c in total] + sorted(set(total) - set(CLASSES))
    rerun = meta.get("rerun")
    note = (f" Then {len(rerun['ids'])} cases re-run after further fixes ({rerun['date']}, "
            f"{rerun['wall_s']:.0f} s): {', '.join(rerun['ids'])}." if rerun else "")
    lines = [f"# spinv bad-input campaign ({len(records)} cases)", "",
             f"Run {meta['date']} on {meta['machine']}, {meta['threads']} thread, timeout "
             f"{meta['timeout']} s per case, total wall {meta['wall_s']:.0f} s.{note}", "",
             "| class | cases |", "|---|---|"]
    lines += [f"| {c} | {total[c]} |" for c in classes]
    lines += ["", "| command | " + " | ".join(classes) + " |",
              "|---" * (len(classes) + 1) + "|"]
    for cmd in commands:
        cnt = Counter(r["class"] for r in records if r["command"] == cmd)
        lines.append(f"| {cmd} | " + " | ".join(str(cnt[c]) for c in classes) + " |")
    bad = [r for r in records if r["class"] not in ("ok-error", "ok")]
    if bad:
        lines += ["", "## Cases not ok", ""]
        for r in bad:
            err = " / ".join(s.strip().splitlines()[-1] if s.strip() else "" for s in r["stderr"])
            lines.append(f"- `{r['id']}` **{r['class']}** `spinv {' '.join(r['argv'][0])}` "
                         f"-> exit {r['exit']}: {err[:300]} {r['note']}")
    (out / name).write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="run the cases whose id contains one of "
                    "these comma-separated substrings")
    ap.add_argument("--merge", default=None, help="with --only: replace those cases in this "
                    "campaign JSON and write OUT/campaign.json + summary.md from the result")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--out", default=str(REPO / "results" / "campaign"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--reclassify", nargs=2, metavar=("JSON", "FIXTURES"), default=None,
                    help="classify the records of JSON again (FIXTURES: its kept fixture "
                    "folder); writes OUT/campaign-before.json and OUT/summary-before.md")
    args = ap.parse_args()
    if args.reclassify:
        source = json.loads(Path(args.reclassify[0]).read_text())
        records = reclassify(Path(args.reclassify[0]), Path(args.reclassify[1]))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "campaign-before.json").write_text(
            json.dumps({"meta": source["meta"], "cases": records}, indent=1) + "\n")
        write_summary(records, out, source["meta"], "summary-before.md")
        return 0
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("SPINV_CACHE", str(REPO / ".cache" / "spinv"))
    os.environ["COLUMNS"] = "120"
    import torch

    torch.set_num_threads(1)
    from cases import all_cases, make_fixtures

    import spinv.cli

    spinv.cli._register_all()
    preload()
    root = Path(tempfile.mkdtemp(prefix="spinv-campaign-"))
    t_start = time.monotonic()
    def run_cli(argv: list[str], cwd: Path) -> int:
        pid, _, err = spawn(argv, cwd, "fixture")
        code, _ = wait(pid, time.monotonic() + 300)
        if code != 0:
            print(err.read_text(), file=sys.stderr)
        return code

    fixtures = make_fixtures(root / "fx", REPO, run_cli)
    fixture_snap = snapshot(fixtures)
    wanted = None if args.only is None else args.only.split(",")
    cases = [c for c in all_cases() if wanted is None or any(w in c.id for w in wanted)]
    records = []
    for i, case in enumerate(cases):
        rec = run_case(case, root, fixtures, fixture_snap, case.timeout or args.timeout)
        records.append(rec)
        print(f"[{i + 1}/{len(cases)}] {rec['class']:12s} {rec['seconds']:6.1f}s {case.id}",
              flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
            "threads": 1, "timeout": args.timeout, "wall_s": time.monotonic() - t_start,
            "cases": len(records), "only": args.only}
    if args.merge:
        base = json.loads(Path(args.merge).read_text())
        rerun = {r["id"]: r for r in records}
        merged = [rerun.pop(r["id"], r) for r in base["cases"]] + list(rerun.values())
        meta = {**base["meta"], "rerun": {**meta, "ids": [r["id"] for r in records]},
                "cases": len(merged)}
        records, args.only = merged, None
    name = "campaign.json" if args.only is None else "campaign-partial.json"
    (out / name).write_text(json.dumps({"meta": meta, "cases": records}, indent=1) + "\n")
    if args.only is None:
        write_summary(records, out, meta)
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
