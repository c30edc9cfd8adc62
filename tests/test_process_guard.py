"""The fast set's rule (tests/process_guard.py): an unmarked test that starts a process or
sleeps fails, naming itself and the marker. Run in-process by pytester, so nothing here starts a process: the
guard refuses each attempt before it happens."""

from __future__ import annotations

import subprocess
import sys

import pytest

SUITE = """
import multiprocessing, os, subprocess, sys, time

import pytest


@pytest.fixture
def spawning_fixture():
    subprocess.run([sys.executable, "-c", "pass"])
    yield


def test_plain():
    assert 1 + 1 == 2


def test_run():
    subprocess.run([sys.executable, "-c", "pass"])


def test_check_output():
    subprocess.check_output(["true"])


def test_popen_by_keyword():
    subprocess.Popen(args=["true"])


def test_os_system():
    os.system("true")


def test_posix_spawn():
    os.posix_spawn("/bin/true", ["true"], {})


def test_fork():
    if os.fork() == 0:  # only if the guard let it through: the child leaves at once
        os._exit(0)


def test_multiprocessing():
    multiprocessing.get_context("spawn").Process(target=print).start()


def test_swallowed():
    try:
        subprocess.run([sys.executable, "-c", "pass"])
    except BaseException:
        pass


def test_in_a_fixture(spawning_fixture):
    pass


def test_sleeps():
    time.sleep(0)


@pytest.mark.slow
def test_marked_slow():
    assert subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                          text=True).stdout == "42\\n"
"""


def test_an_unmarked_test_that_starts_a_process_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ("process_guard",)')
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "not slow", "-rfE")
    result.assert_outcomes(passed=1, failed=9, errors=1, deselected=1)
    out = result.stdout.str()
    for name, what in [("test_run", "subprocess.Popen " + sys.executable),
                       ("test_check_output", "subprocess.Popen true"),
                       ("test_popen_by_keyword", "subprocess.Popen true"),
                       ("test_os_system", "os.system"), ("test_posix_spawn", "os.posix_spawn"),
                       ("test_fork", "os.fork"), ("test_multiprocessing", "multiprocessing start"),
                       ("test_swallowed", "subprocess.Popen"), ("test_in_a_fixture", "subprocess")]:
        assert f"test_suite.py::{name} started a process ({what}" in out, name
    assert "test_suite.py::test_sleeps slept (time.sleep(0))" in out
    assert out.count("is not marked slow") >= 10
    assert out.count("@pytest.mark.slow") >= 10
    assert "test_plain" not in out.split("short test summary info")[-1]


@pytest.mark.slow
def test_a_slow_test_may_start_processes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ("process_guard",)')
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "slow")
    result.assert_outcomes(passed=1, deselected=11)


def test_the_guard_leaves_the_originals_reachable() -> None:
    """Installed once per interpreter: a nested pytester run wraps nothing twice."""
    import process_guard

    process_guard.install()
    assert subprocess.Popen.__init__.__wrapped__ is not None  # type: ignore[attr-defined]
    assert not hasattr(subprocess.Popen.__init__.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]
