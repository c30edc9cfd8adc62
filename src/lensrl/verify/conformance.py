"""Conformance with Math-Verify's own regression tables, read from its source distribution.

    python -m lensrl.verify.conformance --fetch --out .cache/conformance/report.json  # make conformance

``--fetch`` (``--fetch-only``: and nothing else) downloads the math-verify sdist pinned in ``constraints/cpu.txt``
(``pip download --no-binary :all: --no-deps``) into the cache folder (``.cache/conformance``,
git-ignored). The parametrised ``(gold, prediction, expected)`` cases of ``tests/test_all.py``,
``tests/test_numina_cases.py`` and ``tests/test_open_thoughts.py`` are read from the archive with
:mod:`ast` (``ast.literal_eval`` on each case: the upstream files are never imported or executed)
and each is run through :func:`lensrl.verify.verify` (not strict). The report gives agreement,
false "correct" (we say correct, the table says wrong), false "wrong" and ``correct is None``, by
file and by family (the test function). The JSON report quotes the cases that differ, so it
stays in the cache folder: the cases are not copied into the repository.

Cases whose test calls Math-Verify with a non-default configuration (expression extraction only,
``precision`` other than 6, ``allow_set_relation_comp=True``) are judged against what the default
LaTeX path gives for them: ``verify(parse(g, [LatexExtractionConfig(boxed_match_priority=0)]),
parse(p, ...))`` with default settings, computed here (LaTeX only, nothing is ``eval``-ed). The
report lists them and says where that differs from the file's own expectation. A case that is not
a literal (an f-string) cannot be read without running upstream code and is counted as unread.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lensrl.verify.pool import VerifierPool

FILES = ("tests/test_all.py", "tests/test_numina_cases.py", "tests/test_open_thoughts.py")
DEFAULT_CACHE = Path(".cache/conformance")
_MATCH_TYPES_RE = re.compile(r"match_types\s*=\s*(\[[^\]]*\])")


@dataclass
class Case:
    file: str
    family: str
    line: int
    gold: str
    prediction: str
    expected: bool
    config: dict[str, Any] = field(default_factory=dict)
    """The non-default Math-Verify settings its test uses (empty: the default LaTeX path)."""
    file_expected: bool | None = None
    """The file's own expectation where ``expected`` was recomputed on the default LaTeX path."""


def pinned_version(constraints: Path = Path("constraints/cpu.txt")) -> str:
    for line in constraints.read_text().splitlines():
        if line.strip().startswith("math-verify=="):
            return line.split("==", 1)[1].strip()
    raise SystemExit(f"{constraints}: no math-verify== pin")


def sdist_path(cache: Path, version: str) -> Path:
    return cache / f"math_verify-{version}.tar.gz"


def fetch(cache: Path, version: str) -> Path:
    """Download the sdist into ``cache`` (once); returns its path."""
    path = sdist_path(cache, version)
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               "-q", "-d", str(cache), f"math-verify=={version}"]
        if subprocess.run(cmd).returncode != 0 or not path.exists():
            raise SystemExit(f"{path}: `{' '.join(cmd[2:])}` failed (no network?)")
    return path


def _call_config(func: ast.FunctionDef, params: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    """The non-default settings of the test's ``compare_strings(...)`` call for one case."""
    config: dict[str, Any] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            for kw in node.keywords:
                if isinstance(kw.value, ast.Name) and kw.value.id in params:
                    value = values[params.index(kw.value.id)]
                else:
                    value = ast.literal_eval(kw.value)
                config[str(kw.arg)] = value
    if "latex" in config.get("match_types", ["latex"]):
        config.pop("match_types", None)  # the LaTeX path is taken; "expr" is never used here
    if config.get("precision", 6) == 6:
        config.pop("precision", None)
    if not config.get("allow_set_relation_comp", False):
        config.pop("allow_set_relation_comp", None)
    config.pop("strict", None)
    return config


def read_cases(source: str, file: str) -> tuple[list[Case], list[str]]:
    """The parametrised cases of one upstream test file, and the ones that are not literals."""
    cases: list[Case] = []
    unread: list[str] = []
    for func in ast.parse(source).body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for deco in func.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            params = [p.strip() for p in ast.literal_eval(deco.args[0]).split(",")]
            rows = deco.args[1]
            assert isinstance(rows, ast.List | ast.Tuple)
            for row in rows.elts:
                try:
                    values = ast.literal_eval(row)
                except ValueError:
                    unread.append(f"{file}:{row.lineno} ({func.name}: not a literal)")
                    continue
                get = dict(zip(params, values, strict=True))
                cases.append(
                    Case(
                        file=file,
                        family=func.name.removeprefix("test_"),
                        line=row.lineno,
                        gold=get["gold"],
                        prediction=get["pred"],
                        expected=bool(get["expected"]),
                        config=_call_config(func, params, values),
                    )
                )
    return cases, unread


def load(sdist: Path) -> tuple[list[Case], list[str]]:
    """Every case of :data:`FILES` in the sdist (read from the archive, nothing extracted)."""
    cases: list[Case] = []
    unread: list[str] = []
    with tarfile.open(sdist) as tar:
        for file in FILES:
            member = next(m for m in tar.getmembers() if m.name.endswith("/" + file))
            handle = tar.extractfile(member)
            assert handle is not None
            got, bad = read_cases(handle.read().decode(), file)
            cases += got
            unread += bad
    return cases, unread


def latex_path_verdict(gold: str, prediction: str) -> bool | None:
    """Math-Verify's verdict with its default LaTeX extraction only, or None where that path
    reads nothing from one side (a bare ``7,425,000`` has no LaTeX anchor)."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0)]
    try:
        g, p = parse(gold, config), parse(prediction, config)
        return bool(verify(g, p)) if g and p else None
    except Exception:  # its own errors are "not equal" in its default mode
        return False


def rebase_nondefault(cases: list[Case]) -> None:
    """Give the cases of a non-default configuration the default LaTeX path's verdict; where
    that path reads nothing, the case tests extraction only and keeps the file's expectation."""
    for case in cases:
        if case.config:
            case.file_expected = case.expected
            verdict = latex_path_verdict(case.gold, case.prediction)
            case.expected = case.expected if verdict is None else verdict


def _tally(rows: list[tuple[Case, bool | None]]) -> dict[str, Any]:
    n = len(rows)
    agree = sum(got is case.expected for case, got in rows)
    return {
        "cases": n,
        "agree": agree,
        "agreement": round(agree / n, 4) if n else None,
        "false_correct": sum(got is True and not case.expected for case, got in rows),
        "false_wrong": sum(got is False and case.expected for case, got in rows),
        "none": sum(got is None for case, got in rows),
    }


def run(
    cases: list[Case], unread: list[str], *, workers: int = 2, pool: VerifierPool | None = None
) -> dict[str, Any]:
    """Judge every case with lensrl's verifier (``pool``, or a new one); the report as a dict."""
    rebase_nondefault(cases)
    golds, preds = [c.gold for c in cases], [c.prediction for c in cases]
    if pool is None:
        with VerifierPool(workers=workers, timeout=10.0) as own:
            verdicts = own.verify_batch(golds, preds, strict=False)
    else:
        verdicts = pool.verify_batch(golds, preds, strict=False)
    rows = [(c, v.correct) for c, v in zip(cases, verdicts, strict=True)]
    by_file = {f: _tally([r for r in rows if r[0].file == f]) for f in FILES}
    families = Counter((c.file, c.family) for c in cases)
    by_family = {
        f"{file}::{family}": _tally([r for r in rows if (r[0].file, r[0].family) == (file, family)])
        for file, family in families
    }
    differ = [
        {**asdict(c), "correct": v.correct, "reason": v.reason, "extracted": v.extracted}
        for c, v in zip(cases, verdicts, strict=True)
        if v.correct is not c.expected
    ]
    return {
        "total": _tally(rows),
        "by_file": by_file,
        "by_family": by_family,
        "rebased": [
            {"case": f"{c.file}:{c.line}", "config": c.config, "file_expected": c.file_expected,
             "expected": c.expected}
            for c in cases if c.config
        ],
        "unread": unread,
        "differences": differ,
    }


def format_report(report: dict[str, Any]) -> str:
    def line(name: str, t: dict[str, Any]) -> str:
        return (f"{name:<60} {t['agree']:>4}/{t['cases']:<4} {t['agreement']:>7.1%}  "
                f"false correct {t['false_correct']}, false wrong {t['false_wrong']}, "
                f"None {t['none']}")

    out = [line("total", report["total"]), ""]
    out += [line(k, v) for k, v in report["by_file"].items()] + [""]
    out += [line(k, v) for k, v in report["by_family"].items()]
    rebased = report["rebased"]
    changed = [r["case"] for r in rebased if r["file_expected"] != r["expected"]]
    out += ["", f"{len(rebased)} cases use a non-default Math-Verify config and are judged against "
            "the default LaTeX path's verdict where it reads both sides (else the file's "
            f"expectation); it differs from the file's on {len(changed)}: {', '.join(changed)}"]
    if report["unread"]:
        out += [f"not read (not literals): {', '.join(report['unread'])}"]
    out += ["", "differences:"]
    for d in report["differences"]:
        out.append(f"  {d['file']}:{d['line']} [{d['family']}] expected {d['expected']}, got "
                   f"{d['correct']} ({d['reason']}; extracted {d['extracted']!r}): "
                   f"gold {d['gold'][:60]!r} pred {d['prediction'][:100]!r}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lensrl.verify.conformance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--fetch", action="store_true", help="download the sdist if missing")
    parser.add_argument("--fetch-only", action="store_true", help="download it, run nothing")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    version = pinned_version()
    if args.fetch_only:
        print(fetch(args.cache, version))
        return 0
    sdist = fetch(args.cache, version) if args.fetch else sdist_path(args.cache, version)
    if not sdist.exists():
        print(f"{sdist}: missing; fill the cache with `make conformance` or "
              f"`python -m lensrl.verify.conformance --fetch`", file=sys.stderr)
        return 2
    cases, unread = load(sdist)
    report = run(cases, unread, workers=args.workers)
    print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
