"""group_diagnostics: by hand on the docs/algorithm.md §3 groups, and against a plain-Python loop."""

from __future__ import annotations

import math
import random

import pytest
import torch

from lensrl.core import compute_advantages, group_diagnostics

from .oracle import calibrated_rewards, lens_normaliser

NAN = math.nan
KEYS = {
    "groups/frac_negative",
    "groups/frac_mixed",
    "groups/frac_positive",
    "groups/frac_unscored",
    "lens/D_mean",
    "lens/conf_wrong_mean",
    "lens/conf_right_mean",
    "lens/calibrated_reward_wrong_mean",
    "lens/adv_share_negative",
    "verify/frac_unjudged",
}


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    # mixed and negative (docs/algorithm.md §3), positive, and a group with a single judged (wrong)
    # sample
    r = [1, 0, 0, 0] + [0, 0, 0, 0] + [1, 1, 1, 1] + [0, NAN, NAN, NAN]
    p = [0.7, 0.9, 0.6, 0.5] + [0.9, 0.8, 0.6, 0.45] + [0.3, 0.4, 0.5, 0.6] + [0.2, 0.1, 0.1, 0.1]
    return torch.tensor(r, dtype=torch.float64), torch.tensor(p, dtype=torch.float64).log()


def test_by_hand() -> None:
    r, lp = _batch()
    adv = compute_advantages(r, lp, group_size=4)
    d = group_diagnostics(r, lp, adv, group_size=4)
    assert set(d) == KEYS
    assert d["groups/frac_mixed"] == d["groups/frac_negative"] == 0.25
    assert d["groups/frac_positive"] == d["groups/frac_unscored"] == 0.25
    assert d["verify/frac_unjudged"] == 3 / 16
    assert d["lens/D_mean"] == pytest.approx((2.8 + 1.8) / 2)
    # every judged wrong sample, the unscored group's too: 4.95 / 8
    assert d["lens/conf_wrong_mean"] == pytest.approx(
        (0.9 + 0.6 + 0.5 + 0.9 + 0.8 + 0.6 + 0.45 + 0.2) / 8
    )
    assert d["lens/conf_right_mean"] == pytest.approx((0.7 + 0.3 + 0.4 + 0.5 + 0.6) / 5)
    # r̃ of the wrong samples of scored groups: 3 mixed + 4 negative (values from docs/algorithm.md §3)
    wrong = [-0.9 / 1.9 / 4, -0.6 / 2.2 / 4, -0.5 / 2.3 / 4, -0.25, -0.2, -0.125, -1 / 12]
    assert d["lens/calibrated_reward_wrong_mean"] == pytest.approx(sum(wrong) / 7)
    neg = abs(adv[4:8]).sum().item()  # 0.060417
    assert neg == pytest.approx(0.0604167, abs=1e-6)
    assert d["lens/adv_share_negative"] == pytest.approx(neg / adv.abs().sum().item())
    grpo = compute_advantages(r, lp, group_size=4, estimator="grpo")
    assert group_diagnostics(r, lp, grpo, group_size=4)["lens/adv_share_negative"] == 0.0
    nsr = compute_advantages(r, lp, group_size=4, estimator="nsr")
    # NSR: 4 of the 3 + 4 unit advantages come from the negative group
    assert group_diagnostics(r, lp, nsr, group_size=4)["lens/adv_share_negative"] == 4 / 7


def test_empty_means_are_nan_not_zero() -> None:
    r = torch.tensor([1.0, 1.0, 1.0, 1.0])
    lp = torch.zeros(4)
    d = group_diagnostics(r, lp, torch.zeros(4), group_size=2)
    assert d["groups/frac_positive"] == 1.0
    assert math.isnan(d["lens/D_mean"]) and math.isnan(d["lens/conf_wrong_mean"])
    assert math.isnan(d["lens/calibrated_reward_wrong_mean"])
    assert d["lens/adv_share_negative"] == 0.0


def test_matches_plain_loop() -> None:
    rng = random.Random(3)
    for _ in range(40):
        G, P = rng.randint(1, 6), rng.randint(1, 5)
        r = [
            rng.choice([0.0, 1.0, NAN]) if rng.random() < 0.5 else float(i % 2)
            for i in range(G * P)
            for _ in [0]
        ]
        if rng.random() < 0.3:
            r[:G] = [0.0] * G
        lp = [rng.uniform(-5.0, 0.0) for _ in range(G * P)]
        R, LP = torch.tensor(r, dtype=torch.float64), torch.tensor(lp, dtype=torch.float64)
        adv = compute_advantages(R, LP, group_size=G)
        d = group_diagnostics(R, LP, adv, group_size=G)
        kinds, Ds, wrong_cal, conf = [], [], [], {0.0: [], 1.0: []}
        share_num = 0.0
        for g in range(P):
            idx = [i for i in range(g * G, (g + 1) * G) if not math.isnan(r[i])]
            rs, ps = [r[i] for i in idx], [math.exp(lp[i]) for i in idx]
            for x, p in zip(rs, ps):
                conf[x].append(p)
            if len(idx) < 2:
                kinds.append("unscored")
                continue
            kind = "negative" if sum(rs) == 0 else "positive" if sum(rs) == len(rs) else "mixed"
            kinds.append(kind)
            if kind != "positive":
                Ds.append(lens_normaliser(rs, ps, 2.0))
                wrong_cal += [c for c, x in zip(calibrated_rewards(rs, ps, 2.0), rs) if x == 0]
            if kind == "negative":
                share_num += sum(abs(adv[i].item()) for i in idx)
        total = adv.abs().sum().item()

        def mean(xs: list[float]) -> float:
            return sum(xs) / len(xs) if xs else math.nan

        want = {
            "groups/frac_negative": kinds.count("negative") / P,
            "groups/frac_mixed": kinds.count("mixed") / P,
            "groups/frac_positive": kinds.count("positive") / P,
            "groups/frac_unscored": kinds.count("unscored") / P,
            "lens/D_mean": mean(Ds),
            "lens/conf_wrong_mean": mean(conf[0.0]),
            "lens/conf_right_mean": mean(conf[1.0]),
            "lens/calibrated_reward_wrong_mean": mean(wrong_cal),
            "lens/adv_share_negative": share_num / total if total > 0 else 0.0,
            "verify/frac_unjudged": sum(math.isnan(x) for x in r) / (G * P),
        }
        assert d == pytest.approx(want, rel=1e-9, nan_ok=True)


def test_bad_input_raises() -> None:
    r, lp = _batch()
    with pytest.raises(ValueError, match="do not split"):
        group_diagnostics(r, lp, torch.zeros(16), group_size=3)
    with pytest.raises(ValueError, match="advantages"):
        group_diagnostics(r, lp, torch.zeros(15), group_size=4)
