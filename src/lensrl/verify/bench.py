"""Verifier throughput (pool vs a serial loop on the same answers) and the slowest hostile case.

    python -m lensrl.verify.bench --quick --out bench/verify.json

The answer set mixes the families of the test tables (integers, fractions vs decimals, radicals,
sets, intervals, tuples, polynomials, percent, degrees, text, thousands separators), about half of
the pairs correct, every pair distinct, grouped like GRPO rollouts (``G`` predictions per gold).
The serial loop runs the same extraction and Math-Verify calls in this process with no pool and no
time limit. Both start warm: workers already running, parser caches already built. Three rounds,
each on a fresh answer set and in alternating order; the speed-up is the median round's.
Also reported: the caller's extraction cost per pair (boxed, prose fallbacks, several boxes for a
list gold) and the time of a call that must first replace every killed worker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lensrl.verify.pool import VerifierPool
from lensrl.verify.prepare import finish, prepare
from lensrl.verify.verdict import Verdict

HOSTILE: tuple[tuple[str, str], ...] = (
    ("huge power tower", "\\boxed{9^{9^{9^{9}}}}"),
    ("huge power", "\\boxed{10^{10^{10}}}"),
    ("huge factorial", "\\boxed{(10^{10})!}"),
    ("long factorial", "\\boxed{99999999999999999999!}"),
    ("huge product", "\\boxed{\\prod_{n=1}^{10^{8}} n}"),
    ("deep braces", "\\boxed{" + "{" * 5000 + "3" + "}" * 5000 + "}"),
    ("deep parentheses", "\\boxed{" + "(" * 3000 + "3" + ")" * 3000 + "}"),
    ("nested exponents", "\\boxed{" + "x^{" * 12 + "2" + "}" * 12 + "}"),
    ("megabyte string", "\\boxed{" + "1+" * 500_000 + "1}"),
    ("megabyte no answer", "x" * 1_000_000),
    ("null bytes", "\\boxed{3\x00\x00}"),
    ("unterminated boxed", "so the answer is \\boxed{3"),
    ("code", "\\boxed{__import__('os').system('echo pwned')}"),
    ("code text", "The answer is exec('import os; os.system(\"echo pwned\")')"),
    ("many boxes", "\\boxed{1}" * 20_000),
)


def answer_set(n: int, *, group: int = 8, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` distinct (gold, prediction) pairs, ``group`` predictions per gold, ~half correct."""
    rng = random.Random(seed)
    golds: list[str] = []
    preds: list[str] = []
    k = 0
    while len(golds) < n:
        k += 1
        kind, a, b = k % 11, rng.randint(2, 99), rng.randint(2, 99)
        variants = _family(kind, a, b)
        for j in range(min(group, n - len(golds))):
            right = rng.random() < 0.5
            pred = (
                variants[1 + j % (len(variants) - 1)] if right else _family(kind, a + j + 1, b)[0]
            )
            golds.append(variants[0])
            preds.append(f"Attempt {k}.{j}: so the result is \\boxed{{{pred}}}.")
    return golds, preds


def _family(kind: int, a: int, b: int) -> list[str]:
    """A gold answer followed by equivalent ways of writing it, for one failure family."""
    return [
        [f"{a}", f"{a}.0", f"{a}"],
        [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}"],
        [f"{a}\\sqrt{{2}}", f"\\sqrt{{{2 * a * a}}}", f"{a}\\sqrt2"],
        [f"\\{{{a},{b}\\}}", f"\\{{{b},{a}\\}}", f"\\{{{a}, {b}\\}}"],
        [f"[{a},{a + b})", f"[{a}, {a + b})", f"\\left[{a},{a + b}\\right)"],
        [f"({a},{-b})", f"({a}, {-b})", f"\\left({a},{-b}\\right)"],
        [f"x^2+{a}x+{b}", f"{b}+{a}x+x^2", f"x^{{2}}+{a}x+{b}"],
        [f"{a}\\%", f"{a}", f"{a}\\%"],
        [f"{a}^\\circ", f"{a}", f"{a}^{{\\circ}}"],
        [f"\\text{{w{a}y{b}}}", f"\\text{{w{a}y{b}}}", f"\\textbf{{w{a}y{b}}}"],
        [f"{a},{b:03d}", f"{a}{b:03d}", f"{a}\\,{b:03d}"],
    ][kind]


PROSE = (
    "Final Answer: The largest $n$ is {a}.",
    "So the answer is {a},{b:02d} meters.",
    "**Final Answer**\n$$ {a} $$",
    "The answer is x >= {a}.",
    "Therefore the answer is $\\frac{{{a}}}{{{b}}}$. I hope it is correct.",
    "Answer: the total is {a},{b:03d}.99\u20ac",
)


def extraction_cost(n: int = 2000, *, seed: int = 0) -> dict[str, float]:
    """Microseconds per pair spent in the calling process (``prepare``: extraction and checks),
    for boxed completions, for prose ones (the answer-phrase fallbacks) and for a list gold
    (several boxes joined). Each completion carries ~1,500 characters of reasoning before it."""
    rng = random.Random(seed)
    reasoning = "We compute step by step: 3 + 4 = 7, and 7 * 6 = 42. " * 30
    sets = {
        "boxed": [("42", f"{reasoning} so \\boxed{{{rng.randint(1, 99)}}}.") for _ in range(n)],
        "prose": [
            ("42", reasoning + PROSE[i % len(PROSE)].format(a=rng.randint(1, 99), b=rng.randint(1, 99)))
            for i in range(n)
        ],
        "list_gold": [("1, 2", f"{reasoning} $\\boxed{{1}}$ $\\boxed{{{i % 3}}}$") for i in range(n)],
    }
    out = {}
    for name, pairs in sets.items():
        t0 = time.perf_counter()
        for gold, pred in pairs:
            prepare(gold, pred, strict=False)
        out[f"extract_us_per_pair_{name}"] = round(1e6 * (time.perf_counter() - t0) / n, 1)
    return out


def restart_ms(pool: VerifierPool, repeats: int = 5) -> float:
    """Median wall time of a call that first has to replace all its killed workers (kill, fork
    from the warm server, judge one pair), in milliseconds."""
    times = []
    for _ in range(repeats):
        for w in pool._pool:
            w.kill()
        t0 = time.perf_counter()
        pool.verify(gold="3", prediction="\\boxed{3}")
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 1)


def serial(golds: list[str], preds: list[str]) -> list[Verdict]:
    """The baseline: the same extraction and Math-Verify calls, one pair after another."""
    from lensrl.verify import _judge

    out = []
    for gold, pred in zip(golds, preds):
        ready = prepare(gold, pred, strict=False)
        if isinstance(ready, Verdict):
            out.append(ready)
        else:
            out.append(finish(ready, *_judge.judge(ready.gold, ready.prediction)))
    return out


def throughput(pool: VerifierPool, n: int, rounds: int) -> dict[str, Any]:
    """The pool against the serial loop on ``rounds`` fresh answer sets of ``n`` pairs."""
    from lensrl.verify import _judge

    serial_times: list[float] = []
    pool_times: list[float] = []
    # Each round judges a fresh answer set (nobody's gold cache has it) both ways, in alternating
    # order, so a change in the machine's load hits both sides alike; the headline is the median
    # of the per-round ratios.
    for r in range(rounds):
        golds, preds = answer_set(n, seed=100 + r)
        _judge._gold_cache.clear()
        for side in ("serial", "pool") if r % 2 == 0 else ("pool", "serial"):
            t0 = time.perf_counter()
            if side == "serial":
                expected = serial(golds, preds)
                serial_times.append(time.perf_counter() - t0)
            else:
                got = pool.verify_batch(golds, preds)
                pool_times.append(time.perf_counter() - t0)
        if got != expected:
            raise AssertionError("pool and serial verdicts differ")
    ratios = [a / b for a, b in zip(serial_times, pool_times)]
    serial_s, pool_s = sum(serial_times), sum(pool_times)
    return {
        "frac_correct": round(sum(v.correct is True for v in expected) / n, 3),
        "workers": pool.workers,
        "cpus": os.cpu_count(),
        "serial_s": round(serial_s, 3),
        "pool_s": round(pool_s, 3),
        "serial_per_s": round(rounds * n / serial_s, 1),
        "pool_per_s": round(rounds * n / pool_s, 1),
        "verify_pool_speedup": round(statistics.median(ratios), 3),
        "per_round_speedups": [round(x, 3) for x in ratios],
        "pooled_speedup": round(serial_s / pool_s, 3),
    }


def hostile_times(pool: VerifierPool, timeout: float) -> dict[str, Any]:
    """Seconds per :data:`HOSTILE` case under ``timeout``, and whether the pool recovers."""
    hostile: dict[str, float] = {}
    for name, text in HOSTILE:
        t0 = time.perf_counter()
        pool.verify(gold="3", prediction=text, timeout=timeout)
        hostile[name] = round(time.perf_counter() - t0, 4)
    t0 = time.perf_counter()
    after = pool.verify(gold="3", prediction="\\boxed{3}")
    recovery_s = time.perf_counter() - t0
    slowest = max(hostile, key=hostile.__getitem__)
    return {
        "hostile_timeout_s": timeout,
        "slowest_hostile_s": hostile[slowest],
        "slowest_hostile_case": slowest,
        "hostile_s": hostile,
        "worker_restarts": pool.stats["restarts"],
        "first_call_after_hostile_s": round(recovery_s, 4),
        "first_call_after_hostile_ok": after.correct is True,
    }


def run(quick: bool = True) -> dict[str, Any]:
    """Measure and return the numbers (see the module docstring)."""
    from lensrl.verify import _worker

    _worker.warm_up()  # the serial loop starts as warm as a forked worker does

    n = 800 if quick else 4000
    rounds = 3
    warm_g, warm_p = answer_set(64, seed=1)
    with VerifierPool(timeout=5.0) as pool:
        serial(warm_g, warm_p)
        pool.verify_batch(warm_g, warm_p)
        speed = throughput(pool, n, rounds)
        hostile = hostile_times(pool, 1.0 if quick else 5.0)
        restart = restart_ms(pool)
    return {
        "quick": quick,
        "n_pairs": n,
        "rounds": rounds,
        **speed,
        **hostile,
        "restart_all_workers_ms": restart,
        **extraction_cost(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lensrl.verify.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="800 pairs, 1 s hostile timeout")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
