"""Unbiased pass@k, difficulty buckets, the ``bucket:k`` parser and an eval file's CIs.

Pure numpy and the standard library (no torch), so the report can import it. Conventions follow
docs/evaluation.md: per-problem pass@k from that problem's ``(n, c)``, then averaged over the
problems of a bucket; never pooled over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lensrl.compare.stats import bootstrap_mean_ci, rng_for

ALL = "all"
HARD = "levels_4-5"  # LENS's "MATH-500 Levels 4-5" subset
DEFAULT_KS: tuple[int, ...] = (1, 2, 4, 8, 16)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct out of ``n`` samples (Chen et al. 2021).

    ``1 − C(n−c, k) / C(n, k)`` in the stable product form ``1 − Π_{i=n−c+1}^{n} (1 − k/i)``
    (docs/evaluation.md); it is exactly 1 when ``n − c < k``.

    Raises:
        ValueError: unless ``1 ≤ k ≤ n`` and ``0 ≤ c ≤ n``.
    """
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_per_problem(n: Sequence[int], c: Sequence[int], k: int) -> np.ndarray:
    """``(m,)`` pass@k of each of ``m`` problems."""
    return np.array([pass_at_k(int(ni), int(ci), k) for ni, ci in zip(n, c, strict=True)])


def usable_ks(ks: Sequence[int], n: Sequence[int]) -> list[int]:
    """The ks that every problem supports (``k ≤ min n``), sorted."""
    n_min = min(n) if len(n) else 0
    return sorted(k for k in set(ks) if 1 <= k <= n_min)


def bucket_masks(levels: Sequence[int | None]) -> dict[str, np.ndarray]:
    """Boolean ``(m,)`` masks per difficulty bucket, in display order.

    Always ``all``; ``level_N`` for every integer level present; and ``levels_4-5`` when the
    levels look like MATH's (all within 1–5) and some are 4 or 5. Problems without a level are
    only in ``all``. Empty buckets are left out.
    """
    lv = np.array([-1 if x is None else int(x) for x in levels], dtype=int)
    masks: dict[str, np.ndarray] = {ALL: np.ones(len(lv), dtype=bool)}
    present = sorted({int(x) for x in lv if x >= 0})
    for level in present:
        masks[f"level_{level}"] = lv == level
    if present and set(present) <= {1, 2, 3, 4, 5} and {4, 5} & set(present):
        masks[HARD] = (lv == 4) | (lv == 5)
    return masks


def bucket_label(bucket: str) -> str:
    """The bucket as tables and plots print it: its own name (``all``, ``level_3``,
    ``levels_4-5``), the spelling ``--primary`` accepts."""
    return bucket


def parse_endpoints(spec: str | None, flag: str = "--primary") -> list[tuple[str, int]]:
    """``"all:8,levels_4-5:16"`` → ``[("all", 8), ("levels_4-5", 16)]``: the one ``bucket:k``
    parser (``--primary`` of ``lensrl compare`` and ``lensrl plan``, the study's endpoints).

    Raises:
        ValueError: an item is not ``BUCKET:K`` with an integer K ≥ 1 (the message names
            ``flag`` and quotes the item).
    """
    if not spec:
        return []
    out: list[tuple[str, int]] = []
    for item in spec.split(","):
        bucket, sep, k = item.strip().rpartition(":")
        if not sep or not bucket or not k.isdigit() or int(k) < 1:
            raise ValueError(f"{flag}: {item.strip()!r} is not BUCKET:K (e.g. all:8)")
        out.append((bucket, int(k)))
    return out


def summarize(
    problems: Sequence[dict[str, Any]],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """pass@k per bucket with CIs from per-problem records ``{"n", "c", "level", ...}``.

    Returns ``{bucket: {str(k): {"mean", "ci": [lo, hi], "problems"}}}``, buckets as in
    :func:`bucket_masks`, ks those of ``ks`` with ``k ≤ min n``.
    """
    n = [int(p["n"]) for p in problems]
    c = [int(p["c"]) for p in problems]
    ks_ok = usable_ks(ks, n)
    if not problems or not ks_ok:
        return {}
    table = np.stack([pass_at_k_per_problem(n, c, k) for k in ks_ok], axis=1)  # (m, K)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for bucket, mask in bucket_masks([p.get("level") for p in problems]).items():
        sub = table[mask]
        # A stream per (seed, bucket) so adding a bucket never changes another bucket's CI.
        lo, hi = bootstrap_mean_ci(sub, resamples=resamples, confidence=confidence,
                                   rng=rng_for(seed, bucket))
        out[bucket] = {
            str(k): {
                "mean": float(sub[:, j].mean()),
                "ci": [float(lo[j]), float(hi[j])],
                "problems": int(mask.sum()),
            }
            for j, k in enumerate(ks_ok)
        }
    return out
