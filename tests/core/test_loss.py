"""policy_loss and aggregate: the clipped surrogate (Eq. 3), its aggregations and the k3 KL.

Closed forms at ratio ρ = 1 (inside the clip band), for per-token loss −ρ·A_i and mask m:
    seq_mean_token_mean:      ∂L/∂logπ_{i,t} = −A_i · m_{i,t} / (N · |o_i|)
    token_mean:               ∂L/∂logπ_{i,t} = −A_i · m_{i,t} / Σ m
    seq_mean_token_sum_norm:  ∂L/∂logπ_{i,t} = −A_i · m_{i,t} / (N · norm_tokens)
"""

from __future__ import annotations

import math

import pytest
import torch

from lensrl.core import AGGREGATIONS, aggregate, policy_loss


def _batch(
    seed: int = 0, N: int = 5, T: int = 7, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand(N, T, generator=g, dtype=torch.float64) * 3
    old = logprobs + 0.3 * torch.randn(N, T, generator=g, dtype=torch.float64)
    adv = torch.randn(N, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    lengths[0] = T  # one full row, so the padded width T is really used
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(dtype)
    return logprobs.to(dtype), old.to(dtype), adv.to(dtype), mask


def _closed_form_grad(adv: torch.Tensor, mask: torch.Tensor, mode: str, norm: int) -> torch.Tensor:
    N = mask.shape[0]
    if mode == "seq_mean_token_mean":
        weight = mask / (N * mask.sum(-1, keepdim=True).clamp(min=1))
    elif mode == "token_mean":
        weight = mask / mask.sum()
    else:
        weight = mask / (N * norm)
    return -adv[:, None] * weight


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_gradient_at_ratio_one_is_closed_form(mode: str) -> None:
    logprobs, _, adv, mask = _batch(1)
    mask[3] = 0.0  # an empty row: counted in N, contributes nothing
    lp = logprobs.clone().requires_grad_()
    loss, metrics = policy_loss(lp, logprobs, adv, mask, aggregation=mode, norm_tokens=11)
    loss.backward()
    assert lp.grad is not None
    want = _closed_form_grad(adv, mask, mode, 11)
    torch.testing.assert_close(lp.grad, want, rtol=1e-12, atol=1e-15)
    # at ρ = 1 the loss is −(aggregate of A), nothing clips, the ratio is 1 and the KL 0
    assert loss.item() == pytest.approx(
        -aggregate(adv[:, None].expand_as(mask), mask, mode, 11).item()
    )
    assert metrics["clip/frac"] == 0.0
    assert metrics["policy/ratio_mean"] == pytest.approx(1.0)
    assert metrics["policy/approx_kl"] == 0.0


def test_aggregations_by_hand() -> None:
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.float64)
    # sequence means 2 and 4 → 3; token mean (1+2+3+4)/4 = 2.5; Dr. GRPO 10/(2·3) or 10/(2·8)
    assert aggregate(per_token, mask, "seq_mean_token_mean").item() == pytest.approx(3.0)
    assert aggregate(per_token, mask, "token_mean").item() == pytest.approx(2.5)
    assert aggregate(per_token, mask, "seq_mean_token_sum_norm").item() == pytest.approx(10 / 6)
    assert aggregate(per_token, mask, "seq_mean_token_sum_norm", 8).item() == pytest.approx(10 / 16)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(per_token, mask, "sum")


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("kl", [False, True])
def test_right_padding_leaves_loss_unchanged(mode: str, kl: bool) -> None:
    logprobs, old, adv, mask = _batch(2)
    ref = logprobs + 0.1 if kl else None
    kw = {"aggregation": mode, "norm_tokens": 16, "kl_coef": 0.1 if kl else 0.0}
    base, base_m = policy_loss(logprobs, old, adv, mask, ref_logprobs=ref, **kw)  # type: ignore[arg-type]

    def pad(x: torch.Tensor, value: float) -> torch.Tensor:
        return torch.cat([x, torch.full((x.shape[0], 4), value, dtype=x.dtype)], dim=-1)

    # garbage in the padding (huge ratios) must not leak into the loss or the metrics
    padded, padded_m = policy_loss(
        pad(logprobs, 5.0),
        pad(old, -30.0),
        adv,
        pad(mask, 0.0),
        ref_logprobs=None if ref is None else pad(ref, -7.0),
        **kw,  # type: ignore[arg-type]
    )
    assert padded.item() == pytest.approx(base.item(), rel=1e-12)
    assert padded_m == pytest.approx(base_m, rel=1e-12)


def test_sum_norm_defaults_to_padded_width() -> None:
    """Without norm_tokens, seq_mean_token_sum_norm divides by T: padding then changes it."""
    logprobs, old, adv, mask = _batch(3)
    T = mask.shape[1]
    a, _ = policy_loss(logprobs, old, adv, mask, aggregation="seq_mean_token_sum_norm")
    b, _ = policy_loss(
        logprobs, old, adv, mask, aggregation="seq_mean_token_sum_norm", norm_tokens=T
    )
    assert a.item() == b.item()


@pytest.mark.parametrize(
    ("adv", "ratio", "clipped"),
    [
        (1.0, 2.0, True),
        (1.0, 0.5, False),
        (-1.0, 0.5, True),
        (-1.0, 2.0, False),
        (1.0, 1.1, False),
        (-1.0, 0.9, False),
    ],
)
def test_clipping(adv: float, ratio: float, clipped: bool) -> None:
    old = torch.full((1, 3), -1.0, dtype=torch.float64)
    lp = (old + math.log(ratio)).requires_grad_()
    mask = torch.ones(1, 3, dtype=torch.float64)
    A = torch.tensor([adv], dtype=torch.float64)
    loss, metrics = policy_loss(lp, old, A, mask)
    loss.backward()
    assert lp.grad is not None
    if clipped:  # the clipped branch is the min: no gradient pushes ρ further out
        assert lp.grad.abs().max().item() == 0.0
        bound = 1.2 if adv > 0 else 0.8
        assert loss.item() == pytest.approx(-bound * adv)
        assert metrics["clip/frac"] == 1.0
        assert metrics["clip/frac_high" if adv > 0 else "clip/frac_low"] == 1.0
    else:  # ∂(−ρA)/∂logπ = −ρA, over 3 tokens of one sequence
        torch.testing.assert_close(lp.grad, torch.full_like(lp, -ratio * adv / 3))
        assert metrics["clip/frac"] == 0.0
    assert metrics["policy/ratio_mean"] == pytest.approx(ratio)
    assert metrics["policy/approx_kl"] == pytest.approx(0.5 * math.log(ratio) ** 2)


def test_asymmetric_clip() -> None:
    old = torch.zeros(1, 1, dtype=torch.float64)
    lp = old + math.log(1.25)
    A, mask = torch.ones(1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    assert policy_loss(lp, old, A, mask)[0].item() == pytest.approx(-1.2)
    assert policy_loss(lp, old, A, mask, clip_high=0.28)[0].item() == pytest.approx(-1.25)


def test_k3_kl() -> None:
    logprobs, old, adv, mask = _batch(4)
    lp = logprobs.clone().requires_grad_()
    # ref == logprobs: KL 0, and its gradient 0 as well (∂k3/∂logπ = 1 − e^{ref − logπ})
    loss, m = policy_loss(lp, old, adv, mask, kl_coef=0.5, ref_logprobs=logprobs.clone())
    plain, _ = policy_loss(lp, old, adv, mask)
    assert m["loss/kl"] == 0.0
    (g_kl,) = torch.autograd.grad(loss, lp)
    (g_plain,) = torch.autograd.grad(plain, lp)
    torch.testing.assert_close(g_kl, g_plain)
    # any ref: k3 = e^δ − δ − 1 ≥ 0, and the loss adds kl_coef · KL
    g = torch.Generator().manual_seed(5)
    for _ in range(20):
        ref = logprobs + 3 * torch.randn(logprobs.shape, generator=g, dtype=torch.float64)
        loss, m = policy_loss(logprobs, old, adv, mask, kl_coef=0.5, ref_logprobs=ref)
        assert m["loss/kl"] > 0
        assert loss.item() == pytest.approx(m["loss/policy"] + 0.5 * m["loss/kl"])
        delta = ref - logprobs
        k3 = torch.exp(delta) - delta - 1
        assert bool((k3 >= 0).all())
        assert m["loss/kl"] == pytest.approx(aggregate(k3, mask, "seq_mean_token_mean").item())


def test_kl_is_logged_but_not_added_at_zero_coef() -> None:
    logprobs, old, adv, mask = _batch(6)
    loss, m = policy_loss(logprobs, old, adv, mask, ref_logprobs=logprobs - 1.0)
    assert m["loss/kl"] > 0
    assert loss.item() == m["loss/policy"]


def test_scaling_advantages_scales_loss() -> None:
    """The surrogate is positively homogeneous in A: α·A gives α·loss (docs/algorithm.md §6 fact 9)."""
    logprobs, old, adv, mask = _batch(7)
    base, _ = policy_loss(logprobs, old, adv, mask)
    scaled, _ = policy_loss(logprobs, old, 0.25 * adv, mask)
    assert scaled.item() == pytest.approx(0.25 * base.item(), rel=1e-12)


def test_per_token_advantages() -> None:
    logprobs, old, adv, mask = _batch(8)
    a, _ = policy_loss(logprobs, old, adv, mask)
    b, _ = policy_loss(logprobs, old, adv[:, None].expand_as(mask).clone(), mask)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_no_gradient_into_old_or_ref() -> None:
    logprobs, old, adv, mask = _batch(9)
    old = old.clone().requires_grad_()
    ref = (logprobs + 0.2).requires_grad_()
    lp = logprobs.clone().requires_grad_()
    loss, _ = policy_loss(lp, old, adv, mask, kl_coef=0.1, ref_logprobs=ref)
    loss.backward()
    assert old.grad is None and ref.grad is None and lp.grad is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_follows_logprobs(dtype: torch.dtype) -> None:
    logprobs, old, adv, mask = _batch(10)
    ref, _ = policy_loss(logprobs, old, adv, mask, kl_coef=0.1, ref_logprobs=logprobs - 0.1)
    loss, m = policy_loss(
        logprobs.to(dtype),
        old.to(dtype),
        adv.to(dtype),
        mask.to(dtype),
        kl_coef=0.1,
        ref_logprobs=(logprobs - 0.1).to(dtype),
    )
    assert loss.dtype == dtype
    assert all(isinstance(v, float) for v in m.values())
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 5e-2}[dtype]
    assert loss.item() == pytest.approx(ref.item(), rel=tol, abs=tol)


def test_bool_mask() -> None:
    logprobs, old, adv, mask = _batch(11)
    a, _ = policy_loss(logprobs, old, adv, mask)
    b, _ = policy_loss(logprobs, old, adv, mask.bool())
    assert a.item() == b.item()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"old_logprobs": torch.zeros(5, 6)}, "share one"),
        ({"mask": torch.ones(5, 6)}, "share one"),
        ({"advantages": torch.zeros(4)}, "advantages"),
        ({"advantages": torch.zeros(1)}, "advantages"),
        ({"advantages": torch.zeros(5, 6)}, "advantages"),
        ({"ref_logprobs": torch.zeros(5, 6)}, "ref_logprobs"),
        ({"aggregation": "sum"}, "aggregation must be one of"),
        ({"clip_low": 1.0}, "clip_low"),
        ({"clip_high": -0.1}, "clip_high"),
        ({"kl_coef": -1.0}, "kl_coef"),
        ({"kl_coef": 0.1}, "needs ref_logprobs"),
    ],
)
def test_bad_input_raises(change: dict[str, object], match: str) -> None:
    logprobs, old, adv, mask = _batch(12, N=5, T=7, dtype=torch.float32)
    kw: dict[str, object] = {
        "logprobs": logprobs,
        "old_logprobs": old,
        "advantages": adv,
        "mask": mask,
        **change,
    }
    with pytest.raises(ValueError, match=match):
        policy_loss(**kw)  # type: ignore[arg-type]
