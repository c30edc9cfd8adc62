"""The smoke run still logs the golden trajectory (tests/golden/trajectory.py says how and
when to regenerate it)."""

from __future__ import annotations

import json
import math

from .trajectory import GOLDEN, trajectory

# fp32 on another CPU may add in another order; anything beyond this is a change of behaviour
REL = 1e-4


def close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=1e-6)  # type: ignore[arg-type]
    return a == b


def test_smoke_trajectory_matches_golden():
    golden = json.loads(GOLDEN.read_text())
    got = trajectory()
    assert [r["step"] for r in got] == [r["step"] for r in golden]
    for want, have in zip(golden, got):
        assert set(have) == set(want), f"step {want['step']}: keys {set(have) ^ set(want)}"
        drift = {k: (want[k], have[k]) for k in want if not close(want[k], have[k])}
        assert not drift, f"step {want['step']} drifted from tests/golden/smoke_lens.json: {drift}"
