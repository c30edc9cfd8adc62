"""A run folder is data, not code (lensrl.train.state, lensrl.policy.load_checkpoint): the
trainer state loads with ``weights_only=True``, a damaged checkpoint is never loaded silently
(it is skipped for the older one, or refused naming the file), a failed write leaves the older
checkpoints as they were, a moved folder resumes, and NaN never reaches the weights.

In-process and fast; tests/train/test_checkpoints_cli.py runs the same cases through the CLI."""

from __future__ import annotations

import builtins
import errno
import json
import logging
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lensrl.policy import load_checkpoint
from lensrl.runs import CheckpointError, check_manifest, file_sha256, write_manifest
from lensrl.train.config import TrainConfig
from lensrl.train.presets import load_preset
from lensrl.train.state import (
    build_state,
    load_trainer_state,
    restore_state,
    save_state,
    set_rng_state,
)
from lensrl.train.trainer import TrainingError, train

WEIGHTS = Path("model") / "model.safetensors"


def smoke(run_dir: Path, **sections) -> TrainConfig:
    data = load_preset("smoke")
    data.setdefault("model", {})["dtype"] = "float32"
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    data.setdefault("run", {})["run_dir"] = str(run_dir)
    return TrainConfig.from_dict(data)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A 2-step smoke run with a checkpoint after each step (step_1, step_2)."""
    return train(smoke(tmp_path_factory.mktemp("ckpt") / "run", run={"steps": 2, "checkpoint_every": 1}))


@pytest.fixture
def run(base, tmp_path) -> Path:
    """A copy of ``base`` for a test to damage."""
    return Path(shutil.copytree(base, tmp_path / "run"))


@pytest.fixture
def state(tmp_path):
    s = build_state(smoke(tmp_path / "unused", run={"steps": 2}))
    yield s
    s.verifier.close()


def ckpt(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step}"


def rewrite_weights(folder: Path, change) -> None:
    """Rewrite a checkpoint's weights through ``change`` and re-record its manifest: a checkpoint
    that is whole on disk but holds the wrong tensors, which the strict load must catch."""
    tensors = load_file(folder / WEIGHTS)
    change(tensors)
    save_file(tensors, folder / WEIGHTS, metadata={"format": "pt"})
    write_manifest(folder, int(folder.name[5:]))


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / WEIGHTS)


class Payload:
    """Unpickling this creates ``marker``: what a malicious trainer_state.pt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def plant_payload(folder: Path, marker: Path) -> None:
    torch.save({"step": 2, "optimizer": Payload(marker), "scheduler": {}, "rng": {}, "data": {}},
               folder / "trainer_state.pt")
    write_manifest(folder, int(folder.name[5:]))  # signed as if whole: only the loader can refuse


def _truncate(folder: Path) -> None:
    path = folder / WEIGHTS
    os.truncate(path, path.stat().st_size // 2)


def _truncate_unlisted(folder: Path) -> None:  # a 0.1 checkpoint (no manifest) cut short
    (folder / "manifest.json").unlink()
    _truncate(folder)


def _flip_byte(folder: Path) -> None:  # same size, other content: only the sha256 sees it
    path = folder / "trainer_state.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _first_key(tensors: dict) -> str:
    return sorted(tensors)[0]


DAMAGES = {
    "truncated": (_truncate, "manifest says"),
    "truncated, no manifest": (_truncate_unlisted, "unreadable safetensors file"),
    "missing tensor": (lambda f: rewrite_weights(f, lambda t: t.pop(_first_key(t))), "missing tensor"),
    "extra tensor": (lambda f: rewrite_weights(f, lambda t: t.update(stray=torch.zeros(2))),
                     "unexpected tensor(s) stray"),
    "wrong shape": (lambda f: rewrite_weights(
        f, lambda t: t.update({_first_key(t): t[_first_key(t)][:-1].clone()})), "wrong shape"),
    "non-finite weight": (lambda f: rewrite_weights(
        f, lambda t: t[_first_key(t)].view(-1).__setitem__(0, math.nan)), "non-finite values"),
    "missing trainer state": (lambda f: (f / "trainer_state.pt").unlink(), "trainer_state.pt: missing"),
    "manifest mismatch": (_flip_byte, "sha256 differs"),
}


def test_trainer_state_loads_with_weights_only_and_old_tuples_still_restore(base):
    saved = torch.load(ckpt(base, 2) / "trainer_state.pt", weights_only=True)
    assert saved["step"] == 2 and isinstance(saved["rng"]["python"], list)
    assert all(type(v) is int for v in saved["data"].values())
    assert check_manifest(ckpt(base, 2), 2) is True
    import random

    a, b = random.Random(), random.Random(7)
    as_01 = {**saved["rng"], "python": b.getstate()}  # 0.1 saved Python's state as a tuple
    set_rng_state(as_01, torch.Generator(), a)
    assert a.random() == b.random()


def test_pickle_payload_is_refused_without_running_it(run, state, tmp_path, caplog):
    marker = tmp_path / "payload-ran"
    plant_payload(ckpt(run, 2), marker)
    with pytest.raises(CheckpointError, match=r"step_2/trainer_state.pt: refused: .*\(io\.open\)"):
        load_trainer_state(ckpt(run, 2))
    with caplog.at_level(logging.WARNING, "lensrl.train"):
        assert restore_state(state, run) == 1
    assert not marker.exists()
    assert "refused" in caplog.text and "step_2" in caplog.text


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_newest_checkpoint_falls_back_to_the_older_one_and_is_kept(run, state, damage, caplog):
    change, problem = DAMAGES[damage]
    change(ckpt(run, 2))
    before = sorted(p.relative_to(ckpt(run, 2)) for p in ckpt(run, 2).rglob("*"))
    with caplog.at_level(logging.WARNING, "lensrl.train"):
        assert restore_state(state, run) == 1
    assert "step_2" in caplog.text and problem in caplog.text, caplog.text
    kept = run / "checkpoints" / "step_2.damaged"  # set aside, never deleted
    assert sorted(p.relative_to(kept) for p in kept.rglob("*")) == before
    assert not ckpt(run, 2).exists()
    for name, tensor in weights_of(ckpt(run, 1)).items():
        assert torch.equal(state.model.state_dict()[name], tensor), name
    assert [json.loads(r)["step"] for r in (run / "metrics.jsonl").read_text().splitlines()] == [1]


@pytest.mark.parametrize("damage", ["missing tensor", "wrong shape", "truncated"])
def test_no_good_checkpoint_is_an_error_naming_the_file_and_changes_nothing(run, state, damage):
    change, problem = DAMAGES[damage]
    for step in (1, 2):
        change(ckpt(run, step))
    metrics = (run / "metrics.jsonl").read_bytes()
    initial = {k: v.clone() for k, v in state.model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"step_2/model/model.safetensors: .*{problem}"):
        restore_state(state, run)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_1", "step_2"]
    assert (run / "metrics.jsonl").read_bytes() == metrics
    assert all(torch.equal(v, initial[k]) for k, v in state.model.state_dict().items())


def test_eval_loader_is_strict_and_falls_back_only_without_a_step(run, caplog):
    """from_pretrained alone would fill a missing tensor with initial values and carry on."""
    DAMAGES["missing tensor"][0](ckpt(run, 2))
    with pytest.raises(CheckpointError, match=r"step_2/model/model.safetensors: missing tensor"):
        load_checkpoint(run, 2)
    with caplog.at_level(logging.WARNING, "lensrl.policy"):
        model, _, step, _ = load_checkpoint(run)
    assert step == 1 and "step_2 is damaged" in caplog.text
    assert (run / "checkpoints" / "step_2").is_dir()  # a reader moves nothing
    for name, tensor in weights_of(ckpt(run, 1)).items():
        assert torch.equal(model.state_dict()[name], tensor), name


def _enospc(path: Path, keep: int) -> OSError:
    """A writer that got ``keep`` bytes out before the disk filled."""
    with open(path, "wb") as f:
        f.write(b"\0" * keep)
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.parametrize("writer", ["trainer_state.pt", "model/model.safetensors"])
def test_full_disk_mid_save_keeps_older_checkpoints_and_names_the_file(run, state, monkeypatch, writer):
    import transformers.modeling_utils

    if writer == "trainer_state.pt":
        def fail(obj, f, *args, **kwargs):
            raise _enospc(Path(f), 100)
        monkeypatch.setattr(torch, "save", fail)
    else:
        def fail(tensors, filename, *args, **kwargs):
            raise _enospc(Path(filename), 100)
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", fail)
    metrics = (run / "metrics.jsonl").read_bytes()
    manifests = {s: (ckpt(run, s) / "manifest.json").read_bytes() for s in (1, 2)}
    with pytest.raises(CheckpointError, match=rf"step_3/{writer}: could not write .*No space left"):
        save_state(state, run, 3)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_1", "step_2"]
    for s in (1, 2):  # the older checkpoints, whole and unchanged
        assert (ckpt(run, s) / "manifest.json").read_bytes() == manifests[s]
        assert check_manifest(ckpt(run, s), s)
    assert (run / "metrics.jsonl").read_bytes() == metrics


def test_moved_run_folder_resumes_like_an_uninterrupted_run(base, tmp_path):
    full = train(smoke(tmp_path / "full", run={"steps": 3, "checkpoint_every": 1}))
    moved = Path(shutil.copytree(base, tmp_path / "elsewhere" / "moved"))
    train(smoke(moved, run={"steps": 3, "checkpoint_every": 1}), resume=True)
    strip = [{k: v for k, v in json.loads(r).items() if not k.startswith("time/")}
             for r in (full / "metrics.jsonl").read_text().splitlines()]
    got = [{k: v for k, v in json.loads(r).items() if not k.startswith("time/")}
           for r in (moved / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in got] == [1, 2, 3] and got == strip
    assert json.loads((moved / "config.json").read_text())["run"]["run_dir"] == str(moved)
    assert file_sha256(ckpt(moved, 3) / WEIGHTS) == file_sha256(ckpt(full, 3) / WEIGHTS)


def test_nan_in_one_rows_logprobs_skips_the_update_and_names_the_row(tmp_path, monkeypatch, caplog):
    import lensrl.train.trainer as trainer_mod

    real = trainer_mod.token_logprobs

    def nan_row(*args, **kwargs):
        out = real(*args, **kwargs)
        return torch.cat([out[:1] * math.nan, out[1:]]) if torch.is_grad_enabled() else out

    monkeypatch.setattr(trainer_mod, "token_logprobs", nan_row)
    cfg = smoke(tmp_path / "run", run={"steps": 1}, algo={"share_prompt_prefix": False})
    with caplog.at_level(logging.WARNING, "lensrl.train"):
        run_dir = train(cfg)
    m = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert m["train/skipped_nonfinite"] == 2.0 == m["opt/skipped_updates"]  # both updates of the step
    assert len(re.findall(r"row\(s\) \d+ carry it \(non-finite π_θ log-prob\): reward \[.*\], "
                          r"mean π_old logprob \[.*\], advantage \[.*\]", caplog.text)) == 2
    fresh = build_state(cfg)
    fresh.verifier.close()
    for name, tensor in weights_of(ckpt(run_dir, 1)).items():
        assert torch.equal(tensor, fresh.model.state_dict()[name]), name


def test_nan_gradient_stops_after_max_bad_updates_leaving_the_last_good_checkpoint(tmp_path, monkeypatch, caplog):
    import lensrl.train.state as state_mod

    real = state_mod.build_state

    def with_nan_grad(cfg):
        s = real(cfg)
        next(s.model.parameters()).register_hook(lambda g: g * math.nan)
        return s

    monkeypatch.setattr("lensrl.train.trainer.build_state", with_nan_grad)
    cfg = smoke(tmp_path / "run", run={"steps": 3, "checkpoint_every": 1})
    assert cfg.optim.max_bad_updates == 3  # the default
    with caplog.at_level(logging.WARNING, "lensrl.train"), \
            pytest.raises(TrainingError, match=r"3 updates in a row .*optim.max_bad_updates = 3"):
        train(cfg)
    assert "gradient norm" in caplog.text and "the gradient overflowed" in caplog.text
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_1"]
    fresh = real(cfg)
    fresh.verifier.close()
    for name, tensor in weights_of(ckpt(run_dir, 1)).items():
        assert torch.isfinite(tensor).all() and torch.equal(tensor, fresh.model.state_dict()[name])
