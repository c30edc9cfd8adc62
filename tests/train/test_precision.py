"""Mixed precision: fp32 master weights with bf16 compute (docs/training.md, "Precision").

bf16 is emulated on CPUs without AVX-512 BF16, so these tests use the nano model and few steps;
they pin their dtype, and hold whatever ``auto`` would pick on this machine."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lensrl.data import ALPHABET
from lensrl.policy import build_tiny, token_logprobs
from lensrl.train.config import TrainConfig
from lensrl.train.precision import ASSUME_BF16_ENV, select_dtype
from lensrl.train.presets import load_preset
from lensrl.train.sft import SFTConfig, sft
from lensrl.train.state import build_state
from lensrl.train.trainer import collect, score, train

PAPER_LR = 1e-6


def smoke(run_dir: Path, dtype: str, **sections: dict) -> TrainConfig:
    data = load_preset("smoke")
    data["model"]["dtype"] = dtype
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    data.setdefault("run", {})["run_dir"] = str(run_dir)
    return TrainConfig.from_dict(data)


def weight_shift(weights: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> float:
    """‖W − W₀‖ over every tensor the two share (tied embeddings counted once)."""
    return float(torch.sqrt(sum(((weights[k].float() - start[k].float()) ** 2).sum()
                                for k in weights if k in start)))


def test_auto_picks_bf16_under_the_switch(monkeypatch):
    monkeypatch.setenv(ASSUME_BF16_ENV, "1")
    dtype, reason = select_dtype("auto", torch.device("cpu"))
    assert dtype == torch.bfloat16 and "float32 weights" in reason
    monkeypatch.setenv(ASSUME_BF16_ENV, "0")
    assert select_dtype("float32", torch.device("cpu"))[0] == torch.float32


def test_bf16_run_keeps_fp32_masters_and_moves_like_fp32(tmp_path, one_thread):
    """At the paper's lr, a bf16 run moves its weights as far as an fp32 run (the issue's
    0.7–1.5; casting the model to bf16, as before, gave 0.10), and saves fp32 weights."""
    start = dict(build_tiny("nano", ALPHABET, seed=0)[0].state_dict())
    shift = {}
    for dtype in ("float32", "bfloat16"):
        cfg = smoke(tmp_path / dtype, dtype, optim={"lr": PAPER_LR}, run={"steps": 3})
        run_dir = train(cfg)
        saved = load_file(run_dir / "checkpoints" / "step_3" / "model" / "model.safetensors")
        assert {t.dtype for t in saved.values()} == {torch.float32}
        optim = torch.load(run_dir / "checkpoints" / "step_3" / "trainer_state.pt",
                           weights_only=False)["optimizer"]
        assert all(v.dtype == torch.float32 for st in optim["state"].values()
                   for k, v in st.items() if k != "step")
        shift[dtype] = weight_shift(saved, start)
    assert shift["float32"] > 0
    assert 0.7 <= shift["bfloat16"] / shift["float32"] <= 1.5, shift


def test_sft_bf16_moves_like_fp32(tmp_path, one_thread):
    start = dict(build_tiny("nano", ALPHABET, seed=0)[0].state_dict())
    shift = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        sft(SFTConfig(size="nano", steps=3, batch_size=8, lr=PAPER_LR, levels=[1, 2],
                      train_problems=64, dtype=dtype), out)
        saved = load_file(out / "model.safetensors")
        assert {t.dtype for t in saved.values()} == {torch.float32}
        shift[dtype] = weight_shift(saved, start)
    assert shift["float32"] > 0
    assert 0.7 <= shift["bfloat16"] / shift["float32"] <= 1.5, shift


# How far the first update's ratio ρ = π_θ/π_old may be from 1 on fresh samples, by compute
# dtype. π_old comes from the sampler's KV-cache decode step and π_θ from a full forward, under
# the same autocast: in fp32 they agree to rounding; in bf16 a logit can round differently in the
# two paths. Measured on the nano smoke setup: bf16 max |ρ − 1| 0.007, mean 1.2e-4.
RATIO_BOUNDS = {"float32": (1e-5, 1e-6), "bfloat16": (0.05, 5e-3)}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_first_update_ratio_is_one_up_to_precision(tmp_path, dtype, one_thread):
    cfg = smoke(tmp_path, dtype)
    s = build_state(cfg)
    try:
        batch, _ = collect(s, cfg)
    finally:
        s.verifier.close()
    batch = score(s, cfg, batch)
    ro = batch.rollout
    with torch.no_grad(), s.autocast():
        lp = token_logprobs(s.model, ro.input_ids, ro.attention_mask, ro.completion_ids.shape[1])
    ratio = (lp - batch.old_logprobs)[ro.completion_mask.bool()].exp()
    worst, mean = RATIO_BOUNDS[dtype]
    assert float((ratio - 1).abs().max()) <= worst
    assert float((ratio - 1).abs().mean()) <= mean


def test_select_dtype_is_explicit_about_its_choice(caplog, monkeypatch):
    import lensrl.train.precision as precision

    assert select_dtype("float32", torch.device("cpu"))[0] is torch.float32
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    dtype, reason = select_dtype("auto", torch.device("cpu"))
    assert dtype is torch.float32 and "no native bf16" in reason
    with caplog.at_level(logging.WARNING):
        assert select_dtype("bfloat16", torch.device("cpu"))[0] is torch.bfloat16
    assert "slower than fp32" in caplog.text
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert select_dtype("auto", torch.device("cpu"))[0] is torch.bfloat16
    with pytest.raises(ValueError, match="model.dtype"):
        select_dtype("fp16", torch.device("cpu"))
