"""Conformance with Math-Verify's own regression tables (lensrl.verify.conformance).

The upstream cases are read from the sdist in ``.cache/conformance`` (``make conformance`` or
``.ci/run`` fills it); without it the full run is skipped with that command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lensrl.verify import VerifierPool
from lensrl.verify import conformance as C

ROOT = Path(__file__).resolve().parents[2]
SOURCE = '''
import pytest
from tests.test_all import compare_strings

@pytest.mark.parametrize("gold,pred,expected", [("$1$", "$1$", 1), (f"{x}", "2", 0), ("a", "b", 0)])
def test_plain(gold, pred, expected):
    assert compare_strings(gold, pred, match_types=["latex", "expr"]) == expected

@pytest.mark.parametrize("gold, pred, expected, precision", [("1", "1.0", 1, 2)])
def test_precise(gold, pred, expected, precision):
    assert compare_strings(gold, pred, match_types=["expr"], precision=precision) == expected
'''


def test_cases_are_read_without_running_the_file() -> None:
    cases, unread = C.read_cases(SOURCE, "tests/x.py")
    assert [(c.family, c.gold, c.prediction, c.expected) for c in cases] == [
        ("plain", "$1$", "$1$", True),
        ("plain", "a", "b", False),
        ("precise", "1", "1.0", True),
    ]
    assert cases[0].config == {} and cases[2].config == {"match_types": ["expr"], "precision": 2}
    assert unread == ["tests/x.py:5 (test_plain: not a literal)"]


def test_nondefault_cases_take_the_latex_path_verdict() -> None:
    cases, _ = C.read_cases(SOURCE, "tests/x.py")
    C.rebase_nondefault(cases)
    # "1" / "1.0" have no LaTeX anchor: that path reads nothing, the file's expectation stays.
    assert (cases[2].expected, cases[2].file_expected) == (True, True)
    assert C.latex_path_verdict("$(0.6,2.6667]$", "$(\\frac{3}{5},\\frac{8}{3}]$") is False


def test_upstream_tables(pool: VerifierPool) -> None:
    sdist = C.sdist_path(ROOT / C.DEFAULT_CACHE, C.pinned_version(ROOT / "constraints/cpu.txt"))
    if not sdist.exists():
        pytest.skip(f"{sdist} missing: run `make conformance` to fill the cache")
    cases, unread = C.load(sdist)
    report = C.run(cases, unread, pool=pool)
    total = report["total"]
    assert total["cases"] >= 250
    assert total["false_correct"] == 0, [d for d in report["differences"] if d["correct"]]
    assert total["agreement"] >= 0.95, C.format_report(report)
