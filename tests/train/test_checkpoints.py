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
import subprocess
import sys
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


# --- the same, through the command line (subprocesses: slow) --------------------------------

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
TRAIN = ("train", "--preset", "smoke", "--no-progress", "--set", "model.dtype=float32")


def lensrl(*args: str, patch: str = "") -> subprocess.CompletedProcess[str]:
    """``lensrl ARGS`` in a fresh interpreter, after running ``patch`` (a fault to inject)."""
    code = f"{patch}\nimport sys\nfrom lensrl.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=ENV, capture_output=True,
                          text=True, timeout=600)


def one_line_error(out: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The error line of a CLI that failed as users should see it: ``code``, no traceback."""
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("lensrl ")]
    assert len(errors) == 1, out.stderr
    return errors[0]


def metrics_without_times(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(r).items() if not k.startswith("time/")}
            for r in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cli_base(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "base"
    out = lensrl(*TRAIN, "--steps", "2", "--checkpoint-every", "1", "--run-dir", str(run))
    assert out.returncode == 0, out.stderr
    return run


@pytest.fixture
def cli_run(cli_base, tmp_path) -> Path:
    return Path(shutil.copytree(cli_base, tmp_path / "run"))


@pytest.mark.slow
def test_cli_moved_folder_resumes_evaluates_and_reports_like_the_original(cli_base, tmp_path):
    full = tmp_path / "full"
    assert lensrl(*TRAIN, "--steps", "3", "--checkpoint-every", "1", "--run-dir", str(full)).returncode == 0
    moved = tmp_path / "synced" / "elsewhere"
    shutil.copytree(cli_base, moved)
    out = lensrl(*TRAIN, "--steps", "3", "--checkpoint-every", "1", "--run-dir", str(moved), "--resume")
    assert out.returncode == 0, out.stderr
    assert metrics_without_times(moved) == metrics_without_times(full)
    out = lensrl("eval", "--run-dir", str(moved), "--limit", "2", "--samples", "2")
    assert out.returncode == 0 and (moved / "eval" / "3.json").is_file(), out.stderr
    out = lensrl("report", str(moved), "--out", str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_cli_pickle_payload_is_not_run_and_the_refusal_is_named(cli_run, tmp_path):
    marker = tmp_path / "payload-ran"
    plant_payload(ckpt(cli_run, 2), marker)
    out = lensrl(*TRAIN, "--steps", "2", "--run-dir", str(cli_run), "--resume")
    assert out.returncode == 0, out.stderr  # resumed from step_1, saying why not step_2
    assert re.search(r"step_2/trainer_state.pt: refused: .*io\.open", out.stderr), out.stderr
    plant_payload(ckpt(cli_run, 1), marker)
    plant_payload(ckpt(cli_run, 2), marker)
    line = one_line_error(lensrl(*TRAIN, "--steps", "2", "--run-dir", str(cli_run), "--resume"))
    assert "step_2/trainer_state.pt: refused" in line
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "missing tensor", "wrong shape",
                                    "missing trainer state", "manifest mismatch"])
def test_cli_damaged_checkpoint_falls_back_or_is_refused_naming_the_file(cli_run, damage):
    change, problem = DAMAGES[damage]
    change(ckpt(cli_run, 2))
    if damage != "missing trainer state":  # lensrl eval needs the model only
        line = one_line_error(lensrl("eval", "--run-dir", str(cli_run), "--checkpoint", "2"))
        assert "step_2" in line and problem in line
    out = lensrl(*TRAIN, "--steps", "2", "--run-dir", str(cli_run), "--resume")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert re.search(rf"step_2 is damaged: \S*step_2/.*{re.escape(problem)}", out.stderr), out.stderr
    assert (cli_run / "checkpoints" / "step_2.damaged").is_dir()
    assert check_manifest(ckpt(cli_run, 2), 2)  # step 2 trained again from step 1, saved anew
    assert [m["step"] for m in metrics_without_times(cli_run)] == [1, 2]
    change(ckpt(cli_run, 1))
    change(ckpt(cli_run, 2))
    line = one_line_error(lensrl(*TRAIN, "--steps", "2", "--run-dir", str(cli_run), "--resume"))
    assert "no usable checkpoint" in line and "step_2/" in line and problem in line


ENOSPC_ON_STEP_2 = """
import errno, os, torch
real = torch.save
def save(obj, f, *args, **kwargs):
    if ".tmp_step_2_" in str(f):
        open(f, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(obj, f, *args, **kwargs)
torch.save = save
"""


@pytest.mark.slow
def test_cli_full_disk_during_a_save_keeps_what_was_written(cli_base, tmp_path):
    run = tmp_path / "run"
    args = (*TRAIN, "--steps", "2", "--checkpoint-every", "1", "--run-dir", str(run))
    line = one_line_error(lensrl(*args, patch=ENOSPC_ON_STEP_2))
    assert "step_2/trainer_state.pt: could not write" in line and "No space left" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_1"]  # no temp left
    assert check_manifest(ckpt(run, 1), 1)
    assert file_sha256(ckpt(run, 1) / WEIGHTS) == file_sha256(ckpt(cli_base, 1) / WEIGHTS)
    assert metrics_without_times(run) == metrics_without_times(cli_base)  # rows 1 and 2, whole
    assert lensrl(*args, "--resume").returncode == 0  # the disk has room again
    assert metrics_without_times(run) == metrics_without_times(cli_base)


NAN_LOGPROB_ROW = """
import math, torch, lensrl.train.trainer as t
real = t.token_logprobs
def one_nan_row(*args, **kwargs):
    out = real(*args, **kwargs)
    return torch.cat([out[:1] * math.nan, out[1:]]) if torch.is_grad_enabled() else out
t.token_logprobs = one_nan_row
"""

NAN_GRADIENT = """
import math, lensrl.train.trainer as t
real = t.build_state
def build_state(cfg):
    state = real(cfg)
    next(state.model.parameters()).register_hook(lambda g: g * math.nan)
    return state
t.build_state = build_state
"""


@pytest.mark.slow
def test_cli_nan_never_reaches_the_weights(cli_base, tmp_path):
    run = tmp_path / "logprob"
    out = lensrl(*TRAIN, "--steps", "1", "--run-dir", str(run), "--set",
                 "algo.share_prompt_prefix=false", patch=NAN_LOGPROB_ROW)
    assert out.returncode == 0, out.stderr
    assert "carry it (non-finite π_θ log-prob)" in out.stderr
    assert metrics_without_times(run)[0]["train/skipped_nonfinite"] == 2.0
    run = tmp_path / "gradient"
    line = one_line_error(lensrl(*TRAIN, "--steps", "3", "--checkpoint-every", "1",
                                 "--run-dir", str(run), patch=NAN_GRADIENT), code=1)
    assert "3 updates in a row" in line and "optim.max_bad_updates = 3" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_1"]
    assert all(torch.isfinite(t).all() for t in weights_of(ckpt(run, 1)).values())
