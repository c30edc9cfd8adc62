"""Bad input to any `lensrl` command: exit status 2, one line naming the culprit, no traceback,
and nothing left behind. In-process through ``lensrl.cli.main``; the subprocess
checks (the real exit status and stderr of the console entry point) are slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lensrl.cli import HelpFormatter, build_parser, main
from lensrl.runs import RunLock
from lensrl.train.config import TrainConfig


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a malformed dataset and a run folder holding only a config."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"problem": "1+1", "answer": "2"}\nnot json\n')
    fake = tmp_path / "runs" / "fake"
    fake.mkdir(parents=True)
    (fake / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    return tmp_path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


CASES = [  # (argv, what the error line must name)
    (["train", "--config", "missing.yaml"], "missing.yaml"),
    (["train", "--preset", "nope"], "--preset"),
    (["train", "--preset", "smoke", "--set", "optim.lr=fast"], "optim.lr"),
    (["train", "--preset", "smoke", "--set", "rollout.samples_per_prompt=4.5"],
     "rollout.samples_per_prompt"),
    (["train", "--preset", "smoke", "--steps", "-1"], "--steps"),
    (["train", "--preset", "smoke", "--set", "algo.micro_batch=3",
      "--set", "batch.rows_per_micro_batch=5"], "algo.micro_batch"),
    pytest.param(["train", "--preset", "smoke", "--run-dir", "runs/new",
                  "--set", "task.dataset=bad.jsonl"], "bad.jsonl: line 2",
                 marks=pytest.mark.slow),  # builds the model first: torch and transformers
    (["sft", "--out", "warm", "--steps", "0"], "--steps"),
    (["sft", "--out", "warm", "--size", "huge"], "--size"),
    (["eval", "--run-dir", "nowhere"], "nowhere"),
    (["eval", "--run-dir", "runs/fake"], "runs/fake"),  # no checkpoint
    (["eval", "--run-dir", "runs/fake", "--samples", "0"], "--samples"),
    (["eval", "--run-dir", "runs/fake", "--temperature", "-1"], "--temperature"),
    (["eval", "--run-dir", "runs/fake", "--top-p", "2"], "--top-p"),
    (["eval", "--run-dir", "runs/fake", "--ks", "32", "--samples", "8"], "--ks 32"),
    (["compare", "nowhere", "runs/fake"], "nowhere"),
    (["compare", "runs/fake", "--alpha", "2"], "--alpha"),
    (["plan", "runs/fake", "--delta", "0"], "--delta"),
    (["plan", "nowhere", "--delta", "2"], "nowhere"),
    (["report", "nowhere", "--out", "rep"], "nowhere"),
    (["report", "runs/fake", "--out", "rep", "--margin", "-1"], "--margin"),
    (["demo", "--out", "demo", "--set", "optim.lr=fast"], "optim.lr"),
    (["demo", "--warmup-steps", "0"], "--warmup-steps"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--only", "nope"], "--only"),
    (["study", "--config", "missing.yaml"], "missing.yaml"),
    (["study", "--jobs", "0"], "--jobs"),
]


def _id(case: object) -> str:
    argv = case.values[0] if hasattr(case, "values") else case[0]  # type: ignore[index]
    return " ".join(argv)


@pytest.mark.parametrize(("argv", "name"), CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], name: str
) -> None:
    before = _tree(workdir)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and name in errors[0], err
    assert _tree(workdir) == before  # no run folder, report folder or model folder left


def test_a_locked_run_folder_is_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RunLock(workdir / "runs" / "fake"):
        assert main(["train", "--preset", "smoke", "--run-dir", "runs/fake", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lensrl train: error: runs/fake is in use") and "\n" not in err


def test_every_option_of_every_command_has_help_and_shows_its_default() -> None:
    from lensrl.cli import COMMANDS

    for command in COMMANDS:
        parser = build_parser(command)
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        assert sub.formatter_class is HelpFormatter
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"lensrl {command} {action.option_strings[0]}: no help"
        text = sub.format_help()
        if any(a.default not in (None, False, [], "==SUPPRESS==") and a.option_strings
               for a in sub._actions):
            assert "(default: " in text, command


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "lensrl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "name"), [
    (["train", "--preset", "smoke", "--run-dir", "runs/new", "--set", "task.dataset=bad.jsonl"],
     "bad.jsonl: line 2"),
    (["eval", "--run-dir", "runs/fake", "--ks", "32", "--samples", "8"], "--ks 32"),
    (["report", "nowhere", "--out", "rep"], "nowhere"),
    (["study", "--config", "missing.yaml"], "missing.yaml"),
], ids=["train", "eval", "report", "study"])
def test_console_exit_status_and_stderr(workdir: Path, argv: list[str], name: str) -> None:
    before = _tree(workdir)
    out = _cli(*argv, cwd=workdir)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert name in out.stderr.strip().splitlines()[-1]
    assert _tree(workdir) == before


@pytest.mark.slow
def test_finished_run_resume_and_ending(workdir: Path) -> None:
    """train ends with its reward and checkpoint; --resume of a finished run says so, exits 0;
    eval of a missing --data file names it; files are group-readable."""
    args = ["train", "--preset", "smoke", "--steps", "2", "--run-dir", "runs/a"]
    done = _cli(*args, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "step 2 reward/mean" in done.stdout and "runs/a/checkpoints/step_2" in done.stdout
    again = _cli(*args, "--resume", cwd=workdir)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "--steps N --resume" in again.stdout
    bad = _cli("eval", "--run-dir", "runs/a", "--data", "missing.jsonl", cwd=workdir)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr and "Traceback" not in bad.stderr
    weights = workdir / "runs/a/checkpoints/step_2/model/model.safetensors"
    umask = os.umask(0)
    os.umask(umask)
    for path in (workdir / "runs/a/config.json", weights):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert weights.parent.parent.stat().st_mode & 0o777 == 0o777 & ~umask


def test_one_line_joins_a_message_of_several_lines() -> None:
    from lensrl.cli import one_line

    assert one_line(ValueError("runs differ:\n  a\n  b")) == "runs differ: a; b"
    assert one_line(ValueError("")) == "ValueError"
