"""tables.md in words: a verdict per cell, never a claim from too few pairs."""

from __future__ import annotations

from lensrl.study.tables import MIN_PAIRS, _verdict


def test_verdicts_name_the_claim_the_numbers_support() -> None:
    cell = {"diff": 0.001, "p_value": 0.5, "tost": {"margin": 0.02, "p": 0.01,
                                                    "equivalent": True}, "mde_seed_t": 0.01}
    assert "too few pairs" in _verdict(cell, "p_value", MIN_PAIRS - 1)
    assert _verdict(cell, "p_value", MIN_PAIRS) == (
        "no difference larger than ±2.00 pp (TOST p 0.0100)")
    # the one-sided test finds a direction: said, even when within the margin
    assert _verdict({**cell, "direction": "lower"}, "p_value", MIN_PAIRS).endswith(
        "but lower (one-sided)")
    cell["tost"]["equivalent"] = False
    assert _verdict(cell, "p_value", MIN_PAIRS) == "not detected (MDE 1.00 pp)"
    assert _verdict({**cell, "mde_seed_t": None}, "p_value", MIN_PAIRS) == "not detected (MDE ∞ pp)"
    assert _verdict({**cell, "p_value": 0.01, "diff": -0.03}, "p_value", MIN_PAIRS) == (
        "**detected**, lower")
    # significance is the adjusted p against the declared alpha
    assert _verdict({**cell, "q_bh": 0.03}, "q_bh", MIN_PAIRS, alpha=0.01).startswith("not")
