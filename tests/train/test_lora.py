"""model.lora in training: its settings, the sampler, checkpoints, resume and eval, on the smoke
preset's nano model (fp32, one thread). lensrl.policy's LoRA helpers: tests/test_policy.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lora_kit import LORA, adapted, logits
from safetensors.torch import load_file

from lensrl.data import ALPHABET
from lensrl.policy import build_tiny, load_checkpoint, token_logprobs
from lensrl.train.config import ConfigError, TrainConfig, apply_overrides
from lensrl.train.presets import load_preset
from lensrl.train.state import build_state, restore_state, save_state
from lensrl.train.trainer import collect, score, train, update

pytestmark = pytest.mark.usefixtures("one_thread")


def lora_cfg(tmp_path: Path, name: str = "run", **run) -> TrainConfig:
    data = load_preset("smoke")
    data["model"].update(dtype="float32", lora=dict(LORA))
    data["run"].update(run_dir=str(tmp_path / name), **run)
    return TrainConfig.from_dict(data)


@pytest.mark.parametrize("bad, key", [
    ({"r": 0}, "model.lora.r"), ({"r": 2.5}, "model.lora.r"), ({"alpha": -1}, "model.lora.alpha"),
    ({"target_modules": []}, "model.lora.target_modules"),
    ({"target_modules": "q_proj"}, "model.lora.target_modules"),
    ({"dropout": 1.0}, "model.lora.dropout"), ({"rank": 8}, "model.lora.rank"),
])
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TrainConfig.from_dict({"model": {"lora": bad}})


def test_settings_are_completed_and_set_from_the_command_line():
    assert TrainConfig().model.lora is None  # the default: no LoRA
    data = apply_overrides({}, ['model.lora={"r": 8, "target_modules": ["q_proj"]}'])
    lora = TrainConfig.from_dict(data).model.lora
    assert lora == {"r": 8, "alpha": 32, "target_modules": ["q_proj"], "dropout": 0.0}
    with pytest.raises(ConfigError, match=r"model\.lora"):
        TrainConfig.from_dict(apply_overrides({}, ["model.lora=r8"]))


def test_rollout_logprobs_equal_a_forward_of_the_adapted_model():
    """The sampler decodes with the Llama decode step; with adapters its log-probs (the π_old
    the trainer reuses at temperature 1) are the adapted model's own forward's."""
    from lensrl.decode import LlamaDecoder
    from lensrl.rollout import generate

    model, tokenizer = adapted()
    assert LlamaDecoder.supports(model)
    ro = generate(model, tokenizer, ["12+3=", "7+45=", "1+1="], samples_per_prompt=4,
                  max_new_tokens=16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = token_logprobs(model, ro.input_ids, ro.attention_mask, ro.completion_ids.shape[1])
    mask = ro.completion_mask.bool()
    torch.testing.assert_close(ro.sampler_logprobs[mask], full[mask], atol=1e-5, rtol=0)
    base, _ = build_tiny("nano", ALPHABET, seed=0)
    with torch.no_grad():
        plain = token_logprobs(base, ro.input_ids, ro.attention_mask, ro.completion_ids.shape[1])
    assert (plain[mask] - full[mask]).abs().max() > 1e-2  # an adapter-blind decoder would fail


def test_training_moves_only_the_adapters_and_eval_reads_them(tmp_path):
    """One trainer step, a checkpoint, and ``load_checkpoint`` (what ``lensrl eval`` uses): the
    loaded model's logits are exactly the trained model's; the frozen weights did not move."""
    cfg = lora_cfg(tmp_path)
    state = build_state(cfg)
    try:
        frozen = {n: p.detach().clone() for n, p in state.model.named_parameters()
                  if not p.requires_grad}
        adapters = {n: p.detach().clone() for n, p in state.model.named_parameters()
                    if p.requires_grad}
        opt_params = [p for g in state.optimizer.param_groups for p in g["params"]]
        assert len(opt_params) == len(adapters)
        batch = score(state, cfg, collect(state, cfg)[0])
        update(state, cfg, batch, 0)
        cfg.run.path.mkdir(parents=True)
        (cfg.run.path / "config.json").write_text(json.dumps(cfg.to_dict()))
        path = save_state(state, cfg.run.path, 1)
    finally:
        state.verifier.close()
    params = dict(state.model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    assert any(not torch.equal(params[n], v) for n, v in adapters.items())
    saved = load_file(path / "model" / "model.safetensors")
    assert set(adapters) <= set(saved)  # the checkpoint holds the adapters...
    assert "model.layers.0.self_attn.q_proj.base_layer.weight" in saved  # ...and the base
    model, _, step, _ = load_checkpoint(cfg.run.path)
    assert step == 1
    assert torch.equal(logits(model), logits(state.model.eval()))


def test_resume_continues_as_an_uninterrupted_run(tmp_path):
    full = train(lora_cfg(tmp_path, "full", steps=4, checkpoint_every=2))
    train(lora_cfg(tmp_path, "cut", steps=2, checkpoint_every=2))
    cut = train(lora_cfg(tmp_path, "cut", steps=4, checkpoint_every=2), resume=True)

    def metrics(run: Path) -> list[dict]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]

    assert [m["step"] for m in metrics(cut)] == [1, 2, 3, 4]
    assert metrics(cut) == metrics(full)
    assert metrics(full)[-1]["grad/norm"] > 0  # the adapters got a gradient
    a = load_file(full / "checkpoints" / "step_4" / "model" / "model.safetensors")
    b = load_file(cut / "checkpoints" / "step_4" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_restore_reads_the_adapters_back(tmp_path):
    cfg = lora_cfg(tmp_path, steps=1)
    train(cfg)
    state = build_state(cfg)
    try:
        before = logits(state.model.eval())
        assert restore_state(state, cfg.run.path) == 1
    finally:
        state.verifier.close()
    model, _, _, _ = load_checkpoint(cfg.run.path)
    after = logits(state.model.eval())
    assert not torch.equal(after, before)
    assert torch.equal(after, logits(model))
