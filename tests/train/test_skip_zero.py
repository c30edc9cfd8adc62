"""``algo.skip_zero_advantage``: skipping rows whose advantage is 0 changes no weight.

One rollout of the `smoke` preset, scored as GRPO with a fixed verdict pattern (a mixed group,
all-wrong and all-right groups: most rows have advantage 0), then one step of ``update`` from
the same weights and optimizer state with skipping on and off.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import pytest
import torch

from lensrl.train.config import TrainConfig
from lensrl.train.presets import load_preset
from lensrl.train.scored import ScoredBatch
from lensrl.train.state import build_state
from lensrl.train.trainer import collect, score, update

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(tmp_path: Path, micro_batch: int | None = None, **algo) -> TrainConfig:
    data = load_preset("smoke")
    data["model"] = {**data["model"], "dtype": "float32"}  # an exactness test: pinned to fp32
    data["algo"] = {**data["algo"], "estimator": "grpo", **algo}
    if micro_batch is not None:
        data["batch"] = {**data["batch"], "rows_per_micro_batch": micro_batch}
    data["run"] = {**data["run"], "run_dir": str(tmp_path / "run"), "steps": 1}
    return TrainConfig.from_dict(data)


def _batch(s, cfg: TrainConfig, pattern: list[float]) -> ScoredBatch:
    """A real rollout with the verdicts replaced by ``pattern`` (one value per row)."""
    batch, _ = collect(s, cfg)
    correct = torch.tensor(pattern, device=s.device)
    assert correct.shape == batch.correct.shape
    return score(s, cfg, dataclasses.replace(batch, correct=correct))


# smoke: 4 prompts × G = 4, two updates of 2 prompts. Update 1: a mixed group and an all-wrong
# one (4 trained rows of 8); update 2: all-right and all-wrong (nothing to train).
MIXED_THEN_NONE = [1, 0, 0, 1] + [0] * 4 + [1] * 4 + [0] * 4


def _params_after(s, cfg: TrainConfig, batch: ScoredBatch, skip: bool, updates: int = 1):
    s = dataclasses.replace(s, model=copy.deepcopy(s.model))
    o = cfg.optim
    s = dataclasses.replace(s, optimizer=torch.optim.AdamW(
        s.model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=0.01))
    s = dataclasses.replace(s, scheduler=torch.optim.lr_scheduler.LambdaLR(s.optimizer,
                                                                           lambda u: 1.0))
    cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, skip_zero_advantage=skip))
    metrics = []
    for _ in range(updates):
        m, bad = update(s, cfg, batch, 0)
        assert bad == 0
        metrics.append(m)
    return [p.detach().clone() for p in s.model.parameters()], s.optimizer, metrics


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean",
                                         "seq_mean_token_sum_norm"])
@pytest.mark.parametrize("micro_batch", [8, 3])
def test_same_weights_with_and_without_skipping(tmp_path, aggregation, micro_batch):
    cfg = _config(tmp_path, aggregation=aggregation, micro_batch=micro_batch)
    s = build_state(cfg)
    try:
        batch = _batch(s, cfg, MIXED_THEN_NONE)
        assert int((batch.advantages != 0).sum()) == 4  # the mixed group only
        # two steps, so the second sees AdamW moments from the first, and each step ends
        # with an update that trains no row
        on, opt_on, m_on = _params_after(s, cfg, batch, skip=True, updates=2)
        off, opt_off, m_off = _params_after(s, cfg, batch, skip=False, updates=2)
    finally:
        s.verifier.close()
    start = list(s.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(off, start))  # the step moved the weights
    # Skipping changes which rows share a micro-batch and how they are trimmed, hence the float
    # summation order: compare as norm-relative differences (a wrong share or a lost row would
    # be off by O(1)). AdamW divides by sqrt(v), which magnifies round-off in near-zero
    # gradient entries, so the weight steps get a looser bound than the moments.
    for a, b, w0 in zip(on, off, start):
        assert _rel(a - w0, b - w0) < 1e-3
    for p_on, p_off in zip(opt_on.param_groups[0]["params"], opt_off.param_groups[0]["params"]):
        st_on, st_off = opt_on.state[p_on], opt_off.state[p_off]
        assert float(st_on["step"]) == float(st_off["step"]) == 4.0  # 2 updates × 2 steps
        assert _rel(st_on["exp_avg"], st_off["exp_avg"]) < 1e-4
        assert _rel(st_on["exp_avg_sq"], st_off["exp_avg_sq"]) < 1e-4
    for a, b in zip(m_on, m_off):
        assert a["loss/policy"] == pytest.approx(b["loss/policy"], abs=1e-7)
        assert a["grad/norm"] == pytest.approx(b["grad/norm"], rel=1e-4)
        assert a["opt/rows_trained_frac"] == 0.25 and b["opt/rows_trained_frac"] == 1.0


def test_update_with_no_nonzero_row_still_steps_adamw(tmp_path):
    cfg = _config(tmp_path)
    s = build_state(cfg)
    try:
        batch = _batch(s, cfg, [0.0] * 16)  # all wrong: GRPO has nothing to learn
        assert not bool((batch.advantages != 0).any())
        on, opt_on, m_on = _params_after(s, cfg, batch, skip=True)
        off, opt_off, _ = _params_after(s, cfg, batch, skip=False)
    finally:
        s.verifier.close()
    for a, b in zip(on, off):
        assert torch.equal(a, b)
    p = opt_on.param_groups[0]["params"][0]
    assert float(opt_on.state[p]["step"]) == 2.0  # both updates stepped
    assert m_on[0]["opt/rows_trained_frac"] == 0.0 and m_on[0]["grad/norm"] == 0.0
    assert m_on[0]["clip/frac"] != m_on[0]["clip/frac"]  # NaN: a mean over no row


def _rows_and_best_times(tmp_path: Path) -> tuple[dict[bool, int], dict[bool, float]]:
    """GRPO on the smoke preset with most rows at advantage 0, with and without skipping:
    forward rows and best-of-three update time of each. Without prompt sharing, so that every
    forward is one of the rows'."""
    cfg = _config(tmp_path, micro_batch=2, share_prompt_prefix=False)
    s = build_state(cfg)
    try:
        batch = _batch(s, cfg, MIXED_THEN_NONE)
        seen = {"rows": 0}
        real_forward = s.model.forward

        def counting(*args, **kwargs):
            seen["rows"] += kwargs["input_ids"].shape[0]
            return real_forward(*args, **kwargs)

        best = {}
        rows = {}
        for skip in (True, False, True, False, True, False):
            c = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo,
                                                                  skip_zero_advantage=skip))
            s.model.forward = counting
            seen["rows"] = 0
            t = time.perf_counter()
            update(s, c, batch, 0)
            elapsed = time.perf_counter() - t
            s.model.forward = real_forward
            rows[skip] = seen["rows"]
            best[skip] = min(best.get(skip, float("inf")), elapsed)
    finally:
        s.verifier.close()
    return rows, best


def test_skipping_runs_fewer_rows(tmp_path):
    rows, _ = _rows_and_best_times(tmp_path)
    assert rows == {True: 4, False: 16}


@pytest.mark.slow  # a timing assertion: kept out of the default suite (a shared CPU is noisy)
def test_skipping_is_not_slower(tmp_path):
    rows, best = _rows_and_best_times(tmp_path)
    assert rows == {True: 4, False: 16}
    assert best[True] <= 1.2 * best[False]  # best of three, generous margin
