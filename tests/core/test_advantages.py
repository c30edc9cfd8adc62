"""compute_advantages, tested three ways: hand-computed groups, a plain-Python
oracle on random groups, and invariants. The oracle lives in ``oracle.py``."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrl.core import ESTIMATORS, compute_advantages, group_stats

from .oracle import oracle, oracle_group

NAN = math.nan


def _t(xs: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(xs, dtype=dtype)


def _log(ps: list[float]) -> list[float]:
    return [math.log(p) for p in ps]


# --- 1. Hand-computed groups (docs/algorithm.md §3) ---------------------------------------------------

# Negative group, G = 4, π̄ = [0.9, 0.8, 0.6, 0.45]:
#   D = 2·0.9 = 1.8; π̄/(D − π̄) = [0.9/0.9, 0.8/1.0, 0.6/1.2, 0.45/1.35] = [1, 0.8, 0.5, 1/3]
#   r̃ = −(1/4)·that = [−0.25, −0.2, −0.125, −0.08333]; mean = −0.65833/4 = −0.164583
#   α(r̃ − mean) = 0.25·[−0.085417, −0.035417, +0.039583, +0.081250]
#              = [−0.021354, −0.008854, +0.009896, +0.020313]. No std, so ddof does not matter.
NEG_PBAR = [0.9, 0.8, 0.6, 0.45]
NEG_CALIBRATED = [-0.25, -0.2, -0.125, -1 / 12]
NEG_ADV = [-0.0213542, -0.0088542, 0.0098958, 0.0203125]

# Mixed group, G = 4, r = [1, 0, 0, 0], π̄ = [0.7, 0.9, 0.6, 0.5], π̄ in D_imp:
#   D_imp = ((1/4)·(1/0.7))^−1 = 2.8 > 2·0.9 = 1.8, so D = 2.8
#   r̃ = [1, −0.9/1.9/4, −0.6/2.2/4, −0.5/2.3/4] = [1, −0.118421, −0.068182, −0.054348]
#   mean = 0.759049/4 = 0.189762; r̃ − mean = [0.810238, −0.308183, −0.257944, −0.244110]
#   Σ(r̃ − mean)² = 0.877587
#   docs/algorithm.md §3 uses the population std: √(0.877587/4) = 0.468398
#       → [1.729802, −0.657950, −0.550693, −0.521158] (the doc's [1.730, −0.658, −0.551, −0.521])
#   Our default is verl's unbiased std (std_ddof=1): √(0.877587/3) = 0.540860
#       → [0.810238, −0.308183, −0.257944, −0.244110] / 0.540861
#       = [1.498053, −0.569802, −0.476914, −0.451337]
#   Plain GRPO, unbiased: r − mean = [0.75, −0.25, −0.25, −0.25], std = √(0.75/3) = 0.5
#       → [1.5, −0.5, −0.5, −0.5] (population std √(0.75/4): [1.732, −0.577, −0.577, −0.577]).
MIX_R = [1.0, 0.0, 0.0, 0.0]
MIX_PBAR = [0.7, 0.9, 0.6, 0.5]
MIX_CALIBRATED = [1.0, -0.1184211, -0.0681818, -0.0543478]
MIX_ADV_UNBIASED = [1.498053, -0.569802, -0.476914, -0.451337]
MIX_ADV_POPULATION = [1.729802, -0.657950, -0.550693, -0.521158]


def test_worked_negative_group() -> None:
    lp = _t(_log(NEG_PBAR))
    r = _t([0.0] * 4)
    s = group_stats(r, lp, group_size=4)
    assert s.D.tolist() == pytest.approx([1.8])
    assert s.calibrated[0].tolist() == pytest.approx(NEG_CALIBRATED, abs=1e-7)
    for ddof in (0, 1):
        adv = compute_advantages(r, lp, group_size=4, std_ddof=ddof)
        assert adv.tolist() == pytest.approx(NEG_ADV, abs=1e-6)
    # the less confident wrong answers get a positive advantage (docs/algorithm.md §6 fact 11)
    assert adv[2] > 0 and adv[3] > 0


def test_worked_mixed_group() -> None:
    lp, r = _t(_log(MIX_PBAR)), _t(MIX_R)
    s = group_stats(r, lp, group_size=4)
    assert s.D.tolist() == pytest.approx([2.8])
    assert s.calibrated[0].tolist() == pytest.approx(MIX_CALIBRATED, abs=1e-7)
    assert compute_advantages(r, lp, group_size=4).tolist() == pytest.approx(
        MIX_ADV_UNBIASED, abs=1e-6
    )
    assert compute_advantages(r, lp, group_size=4, std_ddof=0).tolist() == pytest.approx(
        MIX_ADV_POPULATION, abs=1e-6
    )
    grpo = compute_advantages(r, lp, group_size=4, estimator="grpo")
    assert grpo.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-5)


def test_worked_batch_all_estimators() -> None:
    """The two worked groups plus a positive one, one batch, every estimator."""
    r = _t(MIX_R + [0.0] * 4 + [1.0] * 4)
    lp = _t(_log(MIX_PBAR + NEG_PBAR + [0.3, 0.4, 0.5, 0.6]))
    expected = {
        "lens": MIX_ADV_UNBIASED + NEG_ADV + [0.0] * 4,
        "lens_mixed_only": MIX_ADV_UNBIASED + [0.0] * 8,
        "lens_negative_only": [1.5, -0.5, -0.5, -0.5] + NEG_ADV + [0.0] * 4,
        "grpo": [1.5, -0.5, -0.5, -0.5] + [0.0] * 8,
        "dr_grpo": [0.75, -0.25, -0.25, -0.25] + [0.0] * 8,
        "nsr": [0.0, -1.0, -1.0, -1.0] + [-1.0] * 4 + [0.0] * 4,
    }
    assert set(expected) == set(ESTIMATORS)
    for name, want in expected.items():
        got = compute_advantages(r, lp, group_size=4, estimator=name)
        assert got.tolist() == pytest.approx(want, abs=1e-5), name


def test_mixed_group_where_floor_binds() -> None:
    # r = [1, 0], π̄ = [0.9, 0.8]: D_imp = (0.5/0.9)^−1 = 1.8 = 2·0.9 (tie); make the right
    # sample more confident than half the wrong one: π̄ = [0.95, 0.6] → D_imp = 1.9 > 1.2.
    # And π̄ = [0.3, 0.9] → D_imp = 0.6 < 1.8, so D = 1.8 and r̃_wrong = −(1/2)·0.9/0.9 = −0.5.
    s = group_stats(_t([1.0, 0.0]), _t(_log([0.3, 0.9])), group_size=2)
    assert s.D.item() == pytest.approx(1.8)
    assert s.calibrated[0].tolist() == pytest.approx([1.0, -0.5])


# --- 2. The oracle on random groups -----------------------------------------------------------


def _random_group(rng: random.Random, G: int) -> tuple[list[float], list[float]]:
    kind = rng.choice(["right", "wrong", "mixed", "mixed", "nan", "few", "empty"])
    if kind == "right":
        r = [1.0] * G
    elif kind == "wrong":
        r = [0.0] * G
    elif kind == "mixed" and G >= 2:
        r = [float(rng.random() < 0.5) for _ in range(G)]
        r[0], r[-1] = 1.0, 0.0
        rng.shuffle(r)
    elif kind == "empty":
        r = [NAN] * G
    elif kind == "few":  # 0, 1 or 2 judged
        r = [NAN] * G
        for i in rng.sample(range(G), min(G, rng.choice([1, 2]))):
            r[i] = float(rng.random() < 0.5)
    else:
        r = [rng.choice([0.0, 1.0, NAN]) for _ in range(G)]
    style = rng.choice(["uniform", "extreme", "tied", "near_zero"])
    if style == "uniform":
        lp = [rng.uniform(-3.0, 0.0) for _ in range(G)]
    elif style == "extreme":
        lp = [rng.choice([-50.0, 0.0, rng.uniform(-50.0, 0.0)]) for _ in range(G)]
    elif style == "tied":
        lp = [rng.choice([-0.5, -1.0])] * G
    else:
        lp = [-abs(rng.gauss(0.0, 1e-3)) for _ in range(G)]
    # a verdict-less sample may carry any log-prob, even NaN (it is ignored)
    lp = [x if not math.isnan(ri) or rng.random() < 0.5 else NAN for x, ri in zip(lp, r)]
    return r, lp


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_matches_oracle_on_random_groups(estimator: str) -> None:
    rng = random.Random(f"oracle-{estimator}")
    n_groups = 0
    for _ in range(60):
        G = rng.choice([1, 2, 3, 4, 5, 8, 16])
        P = rng.randint(1, 6)
        groups = [_random_group(rng, G) for _ in range(P)]
        r = [x for g in groups for x in g[0]]
        lp = [x for g in groups for x in g[1]]
        kw = {
            "alpha": rng.choice([0.25, 1.0, rng.uniform(0.0, 2.0)]),
            "std_ddof": rng.choice([0, 1]),
            "eps": rng.choice([1e-6, 1e-4, 0.0]),
            "d_floor": rng.choice([2.0, 2.0, 1.5, 3.0]),
        }
        got = compute_advantages(_t(r), _t(lp), group_size=G, estimator=estimator, **kw)
        want = oracle(r, lp, group_size=G, estimator=estimator, **kw)
        assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-12), (r, lp, G, kw)
        assert torch.isfinite(got).all()
        n_groups += P
    assert n_groups >= 150


def test_group_with_nan_equals_group_without_it() -> None:
    """A NaN verdict drops the sample: the rest behave as a smaller group (the n of 1/n too)."""
    rng = random.Random(7)
    for estimator in ESTIMATORS:
        for _ in range(20):
            G = rng.randint(2, 8)
            r = [float(rng.random() < 0.4) for _ in range(G)]
            lp = [rng.uniform(-2.0, 0.0) for _ in range(G)]
            k = rng.randint(1, 3)
            spots = sorted(rng.sample(range(G + k), k))
            r_nan, lp_nan = list(r), list(lp)
            for s in spots:
                r_nan.insert(s, NAN)
                lp_nan.insert(s, rng.choice([NAN, 0.0, -9.0]))
            small = compute_advantages(_t(r), _t(lp), group_size=G, estimator=estimator)
            big = compute_advantages(_t(r_nan), _t(lp_nan), group_size=G + k, estimator=estimator)
            assert big[spots].tolist() == [0.0] * k
            keep = [i for i in range(G + k) if i not in spots]
            assert big[keep].tolist() == pytest.approx(small.tolist(), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_groups_of_fewer_than_two_judged_are_zero(estimator: str) -> None:
    r = _t([1.0, NAN, NAN, 0.0, NAN, NAN, NAN, NAN, NAN])
    lp = _t([-0.1, NAN, -1.0, -0.2, -0.3, -0.4, 0.0, 0.0, 0.0])
    adv = compute_advantages(r, lp, group_size=3, estimator=estimator)
    assert adv.tolist() == [0.0] * 9
    # G = 1: every group has one sample, so nothing is learned, for every estimator
    adv1 = compute_advantages(_t([1.0, 0.0]), _t([-0.1, -0.2]), group_size=1, estimator=estimator)
    assert adv1.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_extreme_confidences_stay_finite(estimator: str) -> None:
    lp = _t([0.0, -50.0, 0.0, 0.0, -50.0, -50.0, -700.0, 0.0, -math.inf, -1.0, -math.inf, -1.0])
    r = _t([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    adv = compute_advantages(r, lp, group_size=2, estimator=estimator)
    assert torch.isfinite(adv).all()
    # π̄ = 1 on a wrong sample: D ≥ 2 and r̃ = −(1/n)·1/(D − 1) stays bounded
    s = group_stats(r, lp, group_size=2)
    wrong = s.judged & (s.r == 0) & (s.mixed | s.negative)[:, None]
    assert bool((s.calibrated[wrong] >= -0.5).all())


def test_right_sample_with_zero_confidence() -> None:
    # π̄ = 0 (log-prob −inf) on the right sample: D_imp = 0, so D falls back to the floor
    s = group_stats(_t([1.0, 0.0]), _t([-math.inf, math.log(0.4)]), group_size=2)
    assert s.D.item() == pytest.approx(0.8)
    assert s.calibrated[0].tolist() == pytest.approx([1.0, -0.5])


# --- 3. Invariants ----------------------------------------------------------------------------

verdict = st.sampled_from([0.0, 1.0, 1.0, 0.0, NAN])
logprob = st.one_of(
    st.floats(-50.0, 0.0, allow_nan=False),
    st.sampled_from([0.0, -50.0, -1e-9, -0.69314718]),
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[float], list[float], int]:
    G = draw(st.integers(1, 9))
    P = draw(st.integers(1, 4))
    r = draw(st.lists(verdict, min_size=G * P, max_size=G * P))
    lp = draw(st.lists(logprob, min_size=G * P, max_size=G * P))
    return r, lp, G


@settings(max_examples=150, deadline=None)
@given(batch=batches(), ddof=st.sampled_from([0, 1]), estimator=st.sampled_from(ESTIMATORS))
def test_property_matches_oracle(
    batch: tuple[list[float], list[float], int], ddof: int, estimator: str
) -> None:
    r, lp, G = batch
    got = compute_advantages(_t(r), _t(lp), group_size=G, estimator=estimator, std_ddof=ddof)
    want = oracle(r, lp, group_size=G, estimator=estimator, std_ddof=ddof)
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(batch=batches(), ddof=st.sampled_from([0, 1]))
def test_property_invariants(batch: tuple[list[float], list[float], int], ddof: int) -> None:
    r, lp, G = batch
    R, LP = _t(r), _t(lp)
    s = group_stats(R, LP, group_size=G)
    n = s.n.double()
    for estimator in ("grpo", "dr_grpo", "lens", "lens_mixed_only", "lens_negative_only"):
        adv = compute_advantages(R, LP, group_size=G, estimator=estimator, std_ddof=ddof)
        # zero-sum per group (mixed groups are z-scored or centred; negative groups centred)
        assert adv.reshape(-1, G).sum(-1).abs().max() < 1e-9, estimator
        # unjudged samples get exactly 0
        assert bool((adv[~s.judged.reshape(-1)] == 0).all())
    for estimator in ("lens", "lens_mixed_only", "grpo", "lens_negative_only"):
        adv = compute_advantages(R, LP, group_size=G, estimator=estimator).reshape(-1, G)
        # sign preservation in mixed groups (docs/algorithm.md §6 fact 7): right > 0 > wrong
        mixed = s.mixed[:, None] & s.judged
        assert bool((adv[mixed & (s.r == 1)] > 0).all()), estimator
        assert bool((adv[mixed & (s.r == 0)] < 0).all()), estimator
    # wrong samples in scored groups: r̃ in [−1/n, 0) (π̄ > 0 here since log-probs ≥ −50)
    scored = (s.mixed | s.negative)[:, None] & s.judged & (s.r == 0)
    lower = (-1.0 / n)[:, None].expand_as(s.calibrated)
    assert bool((s.calibrated[scored] >= lower[scored] - 1e-15).all())
    assert bool((s.calibrated[scored] < 0).all())
    # the most confident wrong sample of a negative group gets exactly −1/n
    for p in torch.nonzero(s.negative).flatten().tolist():
        assert s.calibrated[p][s.judged[p]].min().item() == pytest.approx(-1.0 / s.n[p].item())
    # right samples keep reward exactly 1 (docs/algorithm.md §6 fact 1)
    assert bool((s.calibrated[s.judged & (s.r == 1)] == 1.0).all())


def test_sign_invariance_needs_d_floor_at_least_two() -> None:
    """d_floor in (1, 2) is accepted but can flip a wrong sample's sign (docs/algorithm.md)."""
    # n = 8, one right answer with tiny π̄ (D_imp tiny), one wrong at π̄ = 1: with d_floor = 1.1
    # it gets r̃ = −(1/8)·1/0.1 = −1.25, so the mean is < 0 and near-zero r̃ sit above it.
    r = _t([1.0] + [0.0] * 7)
    lp = _t([-40.0, 0.0] + [-40.0] * 6)
    bad = compute_advantages(r, lp, group_size=8, d_floor=1.1)
    assert bool((bad[2:] > 0).any())
    good = compute_advantages(r, lp, group_size=8, d_floor=2.0)
    assert bool((good[1:] < 0).all()) and good[0] > 0


def test_seq_mean_logprob_gets_no_gradient() -> None:
    lp = _t(_log(MIX_PBAR)).requires_grad_()
    adv = compute_advantages(_t(MIX_R), lp, group_size=4)
    assert not adv.requires_grad


# --- dtypes and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_dtype_follows_input(dtype: torch.dtype, estimator: str) -> None:
    r = MIX_R + [0.0] * 4 + [1.0, NAN, 0.0, 1.0]
    lp = _log(MIX_PBAR + NEG_PBAR) + [-0.3, -0.2, -1.0, -50.0]
    adv = compute_advantages(_t(r, dtype), _t(lp, dtype), group_size=4, estimator=estimator)
    assert adv.dtype == dtype
    ref = compute_advantages(
        _t(r, dtype).double(), _t(lp, dtype).double(), group_size=4, estimator=estimator
    )
    tol = {torch.float32: 1e-6, torch.float64: 0.0, torch.bfloat16: 1e-2, torch.float16: 1e-3}
    assert torch.allclose(adv.double(), ref, rtol=tol[dtype], atol=tol[dtype])


def test_bool_and_int_verdicts() -> None:
    lp = _t(_log(MIX_PBAR))
    want = compute_advantages(_t(MIX_R), lp, group_size=4)
    for r in (torch.tensor([True, False, False, False]), torch.tensor([1, 0, 0, 0])):
        got = compute_advantages(r, lp, group_size=4)
        assert got.dtype == torch.float64
        assert got.tolist() == pytest.approx(want.tolist())


@pytest.mark.parametrize(
    ("correct", "lp", "kwargs", "match"),
    [
        ([1.0, 0.0], [0.0, 0.0, 0.0], {}, "must both be"),
        ([[1.0, 0.0]], [[0.0, 0.0]], {}, "must both be"),
        ([1.0, 0.0, 1.0], [0.0, 0.0, 0.0], {}, "do not split"),
        ([1.0, 0.5], [0.0, 0.0], {}, "only 1.0, 0.0 or NaN"),
        ([1.0, 2.0], [0.0, 0.0], {}, "only 1.0, 0.0 or NaN"),
        ([1.0, math.inf], [0.0, 0.0], {}, "only 1.0, 0.0 or NaN"),
        ([1.0, 0.0], [0.0, 0.0], {"estimator": "ppo"}, "estimator must be one of"),
        ([1.0, 0.0], [0.0, 0.0], {"group_size": 0}, "group_size"),
        ([1.0, 0.0], [0.0, 0.0], {"group_size": True}, "group_size"),
        ([1.0, 0.0], [0.0, 0.0], {"std_ddof": 2}, "std_ddof"),
        ([1.0, 0.0], [0.0, 0.0], {"alpha": -0.1}, "alpha"),
        ([1.0, 0.0], [0.0, 0.0], {"eps": -1.0}, "eps"),
        ([1.0, 0.0], [0.0, 0.0], {"d_floor": 1.0}, "d_floor"),
        ([1.0, 0.0], [0.0, NAN], {}, "finite"),
        ([1.0, 0.0], [0.0, math.inf], {}, "finite"),
    ],
)
def test_bad_input_raises(
    correct: list[float], lp: list[float], kwargs: dict[str, object], match: str
) -> None:
    kw: dict[str, object] = {"group_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        compute_advantages(_t(correct), _t(lp), **kw)  # type: ignore[arg-type]


def test_oracle_sanity() -> None:
    """The oracle itself reproduces the hand-computed group (so it is not vacuous)."""
    got = oracle_group(MIX_R, _log(MIX_PBAR), estimator="lens", std_ddof=0)
    assert got == pytest.approx(MIX_ADV_POPULATION, abs=1e-6)


def test_group_types_partition_the_valid_groups():
    """What dynamic sampling keeps (the mixed groups) and what each estimator sees."""
    from lensrl.core import group_stats, group_types

    nan = math.nan
    # G = 3: mixed; mixed; one judged sample (no group type); all right; mixed despite a NaN;
    # all wrong
    correct = torch.tensor([1., 0., 1., 1., 0., 0., 1., nan, nan, 1., 1., 1., 0., 1., nan,
                            0., 0., 0.])
    t = group_types(correct, group_size=3)
    assert t.mixed.tolist() == [True, True, False, False, True, False]
    assert t.positive.tolist() == [False, False, False, True, False, False]
    assert t.negative.tolist() == [False, False, False, False, False, True]
    assert t.valid.tolist() == [True, True, False, True, True, True]
    stats = group_stats(correct, torch.full_like(correct, -1.0), group_size=3)
    for name in ("valid", "negative", "mixed", "positive"):
        assert torch.equal(getattr(t, name), getattr(stats, name)), name
    with pytest.raises(ValueError, match="group_size"):
        group_types(correct, group_size=4)
