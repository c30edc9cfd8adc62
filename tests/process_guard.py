"""The fast set starts no process and does not sleep (a pytest plugin, loaded by ``conftest.py``).

A test without ``@pytest.mark.slow`` that starts a process, in its body or in a fixture that its
setup or teardown runs, fails with a message naming the test and the marker: ``subprocess``
(``run``, ``Popen``, ``check_output``, ``os.popen``, asyncio's subprocesses), ``os.fork``,
``os.forkpty``, ``os.posix_spawn[p]``, ``os.system`` and ``multiprocessing`` (its pools and
executors too). Processes started inside :func:`shared_processes` are the session's shared
infrastructure (the verifier pool of ``conftest.py``) and are allowed. A ``time.sleep`` written
in the test's own file fails the same way (a library's polling is its own business).

A plugin module rather than ``conftest.py`` itself, so that a suite run in-process by pytester
(``tests/test_process_guard.py``) shares the one guard and its notion of the running test.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class ProcessInFastSet(pytest.fail.Exception):
    """A test without the ``slow`` marker started a process or slept. A test outcome like ``pytest.fail``
    (not an ``Exception``), so that code under test that catches ``Exception`` cannot turn it into
    an ordinary error or a pass, and pytest reports it as a failure of the test."""


_running: list[pytest.Item] = []  # the tests being set up, run or torn down (pytester nests)
_shared: list[bool] = []  # depth of shared_processes()
_REFUSED = pytest.StashKey[list[str]]()


@contextlib.contextmanager
def shared_processes() -> Iterator[None]:
    """Processes started inside are the session's shared infrastructure, not a test's."""
    _shared.append(True)
    try:
        yield
    finally:
        _shared.pop()


def _refuse(what: str | None) -> None:
    __tracebackhide__ = True  # the test's own line is the one to show
    if what is None or _shared or not _running or _running[-1].get_closest_marker("slow"):
        return
    item = _running[-1]
    message = (f"{item.nodeid} {what} but is not marked slow: the fast set (make test) starts "
               "no process and does not sleep. Mark the test @pytest.mark.slow (make test-slow "
               "runs it), or judge answers on the session's verifier pool (tests/README.md).")
    item.stash.setdefault(_REFUSED, []).append(message)
    raise ProcessInFastSet(message)


def _popen(_self: Any, args: Any = (), *_: Any, **kwargs: Any) -> str:
    args = kwargs.get("args", args)
    shown = args if isinstance(args, str | bytes) else " ".join(map(str, args))
    return f"started a process (subprocess.Popen {shown[:100]})"


def _sleep(seconds: float) -> str | None:
    """A sleep written in the test's own file (libraries may poll; the test may not wait)."""
    caller = sys._getframe(2).f_code.co_filename  # 0: here, 1: the guard, 2: who slept
    if not _running or Path(caller) != _running[-1].path:
        return None
    return f"slept (time.sleep({seconds}))"


_GUARDED: tuple[tuple[Any, str, Any], ...] = (
    (subprocess.Popen, "__init__", _popen),
    (os, "fork", "started a process (os.fork)"),  # os.spawn*, pty.fork, multiprocessing's fork
    (os, "forkpty", "started a process (os.forkpty)"),
    (os, "posix_spawn", "started a process (os.posix_spawn)"),
    (os, "posix_spawnp", "started a process (os.posix_spawnp)"),
    (os, "system", "started a process (os.system)"),
    (multiprocessing.process.BaseProcess, "start", "started a process (multiprocessing start)"),
    (time, "sleep", _sleep),
)


def _guard(original: Any, what: Any) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        _refuse(what(*args, **kwargs) if callable(what) else what)
        return original(*args, **kwargs)

    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def install() -> None:
    """Wrap every way to start a process, and sleep (once per interpreter; pytester nests)."""
    for owner, name, what in _GUARDED:
        original = getattr(owner, name, None)
        if original is not None and not hasattr(original, "__wrapped__"):
            setattr(owner, name, _guard(original, what))


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.remove(item)


def _checked(item: pytest.Item) -> Any:
    """Run one phase; fail it if the code under test caught ProcessInFastSet and carried on."""
    try:
        result = yield
    finally:
        refused, item.stash[_REFUSED] = item.stash.get(_REFUSED, []), []
    if refused:
        pytest.fail(refused[0], pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    return (yield from _checked(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    return (yield from _checked(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    return (yield from _checked(item))
