"""The run-folder format (lensrl.runs): one JSONL rule for every reader, config.json, the
checkpoint listing and the checkpoint manifest."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from lensrl.runs import (
    CheckpointError,
    RunLock,
    RunLockedError,
    RunLog,
    check_manifest,
    checkpoint_dirs,
    latest_checkpoint,
    read_config,
    read_jsonl,
    read_metrics,
    truncate_after_step,
    write_config,
    write_manifest,
)


def test_one_jsonl_rule_torn_last_line_dropped_bad_middle_line_named(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "x": 0.5}\n\n{"step": 2, "x": null}\n{"step": 3, "x"')
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]  # blank skipped, torn tail dropped
    rows = read_metrics(tmp_path)
    assert rows[0]["x"] == 0.5 and math.isnan(rows[1]["x"])  # null reads back as NaN
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2 is not valid JSON"):
        read_metrics(tmp_path)  # the readers of eval and report see the same error as resume
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_runlog_writes_what_the_readers_read_and_truncate_keeps_earlier_steps(tmp_path):
    log = RunLog(tmp_path)
    for step in (1, 2, 3):
        log.metrics(step, {"reward/mean": step / 10, "bad": math.inf})
    log.close()
    rows = read_metrics(tmp_path)
    assert [r["reward/mean"] for r in rows] == [0.1, 0.2, 0.3]
    assert all(math.isnan(r["bad"]) for r in rows)  # inf is written as null
    truncate_after_step(tmp_path / "metrics.jsonl", 2)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_config_round_trip_and_errors_name_the_file(tmp_path):
    write_config(tmp_path, {"run": {"seed": 3}})
    assert read_config(tmp_path) == {"run": {"seed": 3}}
    with pytest.raises(FileNotFoundError, match="is .* a run folder"):
        read_config(tmp_path / "nope")
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json: expected a JSON object"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        read_config(tmp_path)


def test_checkpoints_listed_by_step_without_temp_folders(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for name in ("step_2", "step_10", ".tmp_step_12_abc", "step_x"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert sorted(checkpoint_dirs(tmp_path)) == [2, 10]
    assert latest_checkpoint(tmp_path) == (10, tmp_path / "checkpoints" / "step_10")


def test_manifest_catches_a_missing_cut_or_changed_file_and_a_renamed_folder(tmp_path):
    ckpt = tmp_path / "step_3"
    (ckpt / "model").mkdir(parents=True)
    (ckpt / "model" / "model.safetensors").write_bytes(b"w" * 64)
    (ckpt / "trainer_state.pt").write_bytes(b"s" * 32)
    assert check_manifest(ckpt, 3) is False  # written before manifests (0.1): not checked here
    write_manifest(ckpt, 3)
    assert check_manifest(ckpt, 3) is True
    with pytest.raises(CheckpointError, match="manifest is for step 3, the folder for 4"):
        check_manifest(ckpt, 4)
    (ckpt / "trainer_state.pt").write_bytes(b"s" * 31 + b"t")
    with pytest.raises(CheckpointError, match=r"trainer_state.pt: sha256 differs"):
        check_manifest(ckpt, 3)
    (ckpt / "trainer_state.pt").write_bytes(b"s" * 32)
    (ckpt / "model" / "model.safetensors").write_bytes(b"w" * 10)
    with pytest.raises(CheckpointError, match=r"model.safetensors: 10 bytes, the manifest says 64"):
        check_manifest(ckpt, 3)
    (ckpt / "model" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model.safetensors: missing \(listed in"):
        check_manifest(ckpt, 3)
    (ckpt / "manifest.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"manifest.json: unreadable manifest"):
        check_manifest(ckpt, 3)


def test_a_lock_of_another_name_is_its_own_and_its_refusal_names_the_pid_and_the_hint(tmp_path):
    """The study and the evaluation lock their folders with RunLock too, under their own file
    and advice; a lock never stands in the way of another name's."""
    with RunLock(tmp_path):
        with RunLock(tmp_path, name=".study.lock", hint="one study per folder"):
            with pytest.raises(RunLockedError, match=rf"pid {os.getpid()}\); one study per") as err:
                RunLock(tmp_path, name=".study.lock", hint="one study per folder").acquire()
            assert err.value.pid == str(os.getpid())
        RunLock(tmp_path, name=".study.lock").acquire(wait=True).release()  # free again
    assert (tmp_path / ".study.lock").read_text() == f"{os.getpid()}\n"


def test_latest_checkpoint_falls_back_past_the_ones_its_reader_refuses(tmp_path):
    for step in (2, 5, 10):
        (tmp_path / "checkpoints" / f"step_{step}").mkdir(parents=True)
    bad = {10: "torn", 5: "truncated"}
    skipped: list[int] = []

    def read(folder: Path, step: int) -> str:
        if step in bad:
            raise CheckpointError(f"{folder}: {bad[step]}")
        return f"model of {folder.name}"

    found = latest_checkpoint(tmp_path, read, damaged=lambda step, err: skipped.append(step))
    assert found == (2, "model of step_2") and skipped == [10, 5]
    bad[2] = "gone"
    with pytest.raises(CheckpointError, match=r"no usable checkpoint: \S*step_10: torn \(and 2 older"):
        latest_checkpoint(tmp_path, read)
