"""The cases of the campaign: every ``spinv`` command x each kind of hostile input.

A case is one or more argv lists with placeholders ``{fx}`` (the fixture folder, see
``fixtures.py``), ``{out}`` (an output path inside the case's own empty folder) and ``{case}``
(that folder); ``needles``: strings of which the error line must contain one (the option or
the file). ``expect="error"``: must fail with exit 2; ``"ok"``: must succeed (exit 0);
``"any"``: exit 0 or a clean error are both acceptable (an unusual but legal value).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fixtures import make_fixtures  # noqa: F401  (re-exported for run_campaign)


@dataclass
class Case:
    id: str
    command: str
    kind: str
    argvs: list[list[str]]
    needles: list[str] = field(default_factory=list)
    expect: str = "error"
    setup: Callable | None = None
    check: Callable | None = None
    interrupt_after: float | None = None
    interrupt_signal: int = 9
    timeout: float | None = None
    touches_fixtures: bool = False


CASES: list[Case] = []


def add(cid: str, command: str, kind: str, argv: str, needles: list[str] | str,
        **kw) -> None:
    needles = [needles] if isinstance(needles, str) else needles
    CASES.append(Case(f"{command.replace(' ', '-')}:{kind}:{cid}", command, kind,
                      [argv.split()], needles, **kw))


# ---- malformed values -------------------------------------------------------------------
INT_BAD = {"neg": "-1", "zero": "0", "huge": "100000000000000000000000", "text": "abc",
           "float": "2.5"}
FLOAT_BAD = {"neg": "-1", "zero": "0", "nan": "nan", "inf": "inf", "ninf": "-inf",
             "huge": "1e300", "text": "abc"}


def numbers(command: str, base: str, options: dict[str, tuple[str, tuple[str, ...]]],
            also: dict[str, str] | None = None) -> None:
    """For each option: (int|float, values that are legal and skipped or 'any:'-prefixed)."""
    for opt, (typ, legal) in options.items():
        table = INT_BAD if typ == "int" else FLOAT_BAD
        for name, value in table.items():
            if name in legal:
                continue
            expect = "any" if f"any:{name}" in legal else "error"
            add(f"{opt.lstrip('-')}={name}", command, "number",
                f"{base} {opt} {value}", [opt, *([also[opt]] if also and opt in also else [])],
                expect=expect)


# ---- malformed files --------------------------------------------------------------------
FILE_KINDS = ["missing", "empty", "garbage", "dir", "through-file"]
NPY_KINDS = ["trunc", "object", "zero", "vector", "nan", "inf", "strings", "liar", "big5d"]


def file_path(kind: str, ext: str) -> str:
    return {"missing": "{fx}/missing." + ext, "empty": "{fx}/empty." + ext,
            "garbage": "{fx}/garbage." + ext, "dir": "{fx}/a_dir.npy",
            "through-file": "{fx}/plainfile/x." + ext}.get(kind, "{fx}/" + kind + "." + ext)


def files(command: str, template: str, exts: tuple[str, ...], kinds: list[str],
          option: str, any_kinds: tuple[str, ...] = ()) -> None:
    """``template`` with ``{F}`` replaced by each hostile file."""
    for ext in exts:
        for kind in kinds:
            path = file_path(kind, ext)
            needles = [path] if option == "" else [path, option]
            add(f"{option.lstrip('-') or 'arg'}-{ext}-{kind}", command, "file",
                template.replace("{F}", path), needles,
                expect="any" if kind in any_kinds else "error")


def configs(command: str, template: str, stem: str) -> None:
    """``template`` with ``{C}`` replaced by each hostile config."""
    variants = {"missing": "{fx}/missing.yaml", "empty": "{fx}/empty.yaml",
                "syntax": "{fx}/bad.yaml", "latin": "{fx}/latin.yaml",
                "scalar": "{fx}/scalar.yaml", "dir": "{fx}/a_dir.npy",
                "unknown": f"{{fx}}/{stem}-unknown.yaml",
                "wrongtype": f"{{fx}}/{stem}-wrongtype.yaml",
                "nan": f"{{fx}}/{stem}-nan.yaml", "inf": f"{{fx}}/{stem}-inf.yaml",
                "negative": f"{{fx}}/{stem}-negative.yaml", "list": f"{{fx}}/{stem}-list.yaml"}
    for name, path in variants.items():
        add(name, command, "config", template.replace("{C}", path), [path])


def outputs(command: str, template: str, run_like: bool = True, file_out: str = "",
            foreign: str = "any", foreign_timeout: float | None = None) -> None:
    """``template`` with ``{O}`` replaced by each hostile output path."""
    cases = {"through-file": "{fx}/plainfile/out" + file_out,
             "dev-null": "/dev/null/out" + file_out,
             "proc": "/proc/spinv-campaign/out" + file_out}
    for name, path in cases.items():  # (the folder that cannot be created names the path too)
        add(name, command, "output", template.replace("{O}", path),
            ["--out", path, path.rsplit("/", 1)[0]])
    if run_like:
        add("existing-file", command, "output", template.replace("{O}", "{case}/afile"),
            ["--out", "{case}/afile"], setup=_mkfile)
        # writing new files beside the user's is allowed ("any"); changing one is data loss
        add("foreign-folder", command, "output", template.replace("{O}", "{case}/mine"),
            ["--out", "{case}/mine"], setup=_mkforeign, expect=foreign,
            timeout=foreign_timeout)


def _mkfile(case: Path, fx: Path) -> None:
    (case / "afile").write_text("precious\n")


def _mkforeign(case: Path, fx: Path) -> None:
    (case / "mine").mkdir()
    (case / "mine" / "config.yaml").write_text("my: own config\n")
    (case / "mine" / "log.jsonl").write_text('{"mine": 1}\n')
    (case / "mine" / "summary.json").write_text('{"mine": 1}\n')


def _copy_run(src: str) -> Callable:
    def setup(case: Path, fx: Path) -> None:
        shutil.copytree(fx / src, case / "run")
    return setup


from case_table import build_table  # noqa: E402


def all_cases() -> list[Case]:
    if not CASES:
        build_table()
    ids = [c.id for c in CASES]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"duplicate case ids: {dup}"
    return CASES


__all__ = ["CASES", "Case", "add", "all_cases", "configs", "files", "json", "make_fixtures",
           "numbers", "outputs"]
