"""The `lensrl` command: help works without importing any sub-command, unknown commands fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lensrl.cli import COMMANDS, main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # a subprocess: the entry point as users run it
def test_python_m_lensrl_help() -> None:
    out = _run(sys.executable, "-m", "lensrl", "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: lensrl" in out.stdout
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.slow  # a subprocess: the entry point as users run it
def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("lensrl" + (".exe" if os.name == "nt" else ""))
    if not script.exists():
        pytest.skip("lensrl console script not installed next to this interpreter")
    out = _run(str(script), "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: lensrl" in out.stdout


def test_main_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: lensrl" in capsys.readouterr().out


def test_unknown_command_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
