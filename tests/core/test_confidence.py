"""sequence_mean_logprob / sequence_confidence: π̄ = exp(masked mean token log-prob) (docs/algorithm.md §1)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from lensrl.core import masked_mean, sequence_confidence, sequence_mean_logprob


def _oracle(
    lp_rows: list[list[float]], lengths: list[int], exclude_eos: bool, truncated: list[bool]
) -> list[float]:
    """Plain-Python π̄: geometric mean over each row's first ``length`` tokens."""
    out = []
    for row, n, trunc in zip(lp_rows, lengths, truncated):
        if exclude_eos and not trunc and n > 1:
            n -= 1  # the last token is the EOS; a one-token row keeps it
        out.append(math.exp(min(sum(row[:n]) / n, 0.0)) if n else 1.0)
    return out


def test_by_hand() -> None:
    # tokens with p = 0.5, 0.25, then EOS with p = 0.8; one pad column
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.8, 0.123]], dtype=torch.float64))
    mask = torch.tensor([[1, 1, 1, 0]])
    # (0.5·0.25·0.8)^(1/3) = 0.1^(1/3) = 0.464159
    assert sequence_confidence(lp, mask).item() == pytest.approx(0.1 ** (1 / 3))
    # without the EOS: (0.5·0.25)^(1/2) = 0.353553
    assert sequence_confidence(lp, mask, exclude_eos=True).item() == pytest.approx(0.125**0.5)
    # a truncated row has no EOS, so its last token is kept
    got = sequence_confidence(lp, mask, exclude_eos=True, truncated=torch.tensor([True]))
    assert got.item() == pytest.approx(0.1 ** (1 / 3))
    assert sequence_mean_logprob(lp, mask).item() == pytest.approx(math.log(0.1) / 3)


def test_matches_oracle_on_random_rows() -> None:
    rng = random.Random(0)
    for _ in range(30):
        N, T = rng.randint(1, 6), rng.randint(1, 12)
        lengths = [rng.randint(0, T) for _ in range(N)]
        rows = [
            [rng.choice([0.0, -50.0, rng.uniform(-8.0, 0.0)]) for _ in range(T)] for _ in range(N)
        ]
        truncated = [rng.random() < 0.3 for _ in range(N)]
        lp = torch.tensor(rows, dtype=torch.float64)
        mask = torch.tensor([[t < n for t in range(T)] for n in lengths])
        for exclude in (False, True):
            got = sequence_confidence(
                lp, mask, exclude_eos=exclude, truncated=torch.tensor(truncated)
            )
            want = _oracle(rows, lengths, exclude, truncated)
            assert got.tolist() == pytest.approx(want, rel=1e-12)


def test_long_sequence_does_not_underflow() -> None:
    # 5000 tokens at p = 0.9: the product is 0.9^5000 ≈ 1e-229 (and 0 in float32), π̄ = 0.9
    lp = torch.full((1, 5000), math.log(0.9), dtype=torch.float32)
    assert torch.exp(lp.sum()).item() == 0.0
    assert sequence_confidence(lp, torch.ones(1, 5000)).item() == pytest.approx(0.9, rel=1e-5)


def test_padding_is_ignored() -> None:
    g = torch.Generator().manual_seed(0)
    lp = -torch.rand(4, 6, generator=g)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] + [0] * 5, [1] * 5 + [0]])
    base = sequence_confidence(lp, mask)
    garbage = torch.where(mask.bool(), lp, torch.full_like(lp, 1e4))
    padded = torch.cat([garbage, torch.full((4, 3), -1e4)], dim=-1)
    got = sequence_confidence(padded, torch.cat([mask, torch.zeros(4, 3, dtype=mask.dtype)], -1))
    torch.testing.assert_close(got, base)


def test_edge_rows() -> None:
    lp = torch.tensor([[-0.7, -0.1], [-0.7, -0.1], [0.0, 0.0], [0.2, 0.3]], dtype=torch.float64)
    mask = torch.tensor([[1, 0], [0, 0], [1, 1], [1, 1]])
    got = sequence_confidence(lp, mask, exclude_eos=True)
    # one token: kept even without its EOS; empty row: mean 0 → π̄ = 1 (documented choice);
    # log-prob 0 → π̄ = 1; positive "log-probs" are clamped, so π̄ never exceeds 1
    assert got.tolist() == pytest.approx([math.exp(-0.7), 1.0, 1.0, 1.0])
    assert sequence_mean_logprob(lp, mask)[1].item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_follows_input(dtype: torch.dtype) -> None:
    lp = torch.tensor([[-0.5, -1.5, 0.0]], dtype=dtype)
    got = sequence_confidence(lp, torch.tensor([[1, 1, 0]]))
    assert got.dtype == dtype
    assert got.item() == pytest.approx(math.exp(-1.0), rel=1e-2)


def test_masked_mean() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1, 0, 1], [0, 0, 0]])
    assert masked_mean(x, m).tolist() == [2.0, 0.0]
    assert masked_mean(x, torch.ones(2, 3), dim=0).tolist() == [2.5, 3.5, 4.5]


def test_gradient_flows_when_wanted() -> None:
    # core does not detach here: callers pass π_old log-probs, which carry no gradient anyway
    lp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    sequence_mean_logprob(lp, torch.ones(1, 2)).sum().backward()
    assert lp.grad is not None and lp.grad.tolist() == [[0.5, 0.5]]


@pytest.mark.parametrize(
    ("lp", "mask"),
    [
        (torch.zeros(2, 3), torch.ones(2, 4)),
        (torch.zeros(3), torch.ones(3)),
        (torch.zeros(1, 2, 3), torch.ones(1, 2, 3)),
    ],
)
def test_bad_shapes_raise(lp: torch.Tensor, mask: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        sequence_confidence(lp, mask)
