"""Fixtures shared by the whole suite, and the rule that keeps the fast set fast.

The fast set (``make test``) starts no process of its own: a test that does (``subprocess``,
``os.fork``, ``multiprocessing``, ``os.posix_spawn``, ``os.system``), in its body or in a fixture
it sets up, fails unless it is marked ``@pytest.mark.slow`` (``make test-slow``). The one
exception is the verifier pool of the session (``shared_verifier``): started once, by this file,
and lent to every fast test that judges answers, the trainer's included (tests/README.md).
``process_guard.py`` enforces the rule.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from typing import Any

import pytest
import torch

# process_guard: the fast set starts no process; pytester: tests/test_process_guard.py
pytest_plugins = ("process_guard", "pytester")


def pytest_configure(config: pytest.Config) -> None:
    # platform.processor() runs `uname -p` once per interpreter and keeps the answer; lensrl.bench
    # describes the machine with it. Asked here, before any test, like the shared verifier pool.
    platform.processor()


@pytest.fixture
def one_thread():
    """One torch thread for the test: small models gain nothing from a second one, and on a
    busy machine its synchronisation makes each op many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the verifier pool of the session ----------------------------------------------------------


class SharedVerifier:
    """Stands in for a ``VerifierPool`` that a fast test's code creates (the trainer's, an
    evaluation's): it judges on the session's pool with its own ``strict`` and ``timeout``
    defaults, and leaves the pool running when it is closed."""

    def __init__(self, workers: int | None = None, timeout: float = 5.0, *,
                 strict: bool = False, **_: Any) -> None:
        self.timeout, self.strict = timeout, strict

    @property
    def workers(self) -> int:
        return int(_shared_pool().workers)

    @property
    def stats(self) -> dict[str, int]:
        return dict(_shared_pool().stats)

    def verify(self, *, gold: str, prediction: str, strict: bool | None = None,
               timeout: float | None = None) -> Any:
        return self.verify_batch([gold], [prediction], strict=strict, timeout=timeout)[0]

    def verify_batch(self, golds: Sequence[str], predictions: Sequence[str], *,
                     strict: bool | None = None, timeout: float | None = None) -> list[Any]:
        return _shared_pool().verify_batch(golds, predictions,
                                           strict=self.strict if strict is None else strict,
                                           timeout=self.timeout if timeout is None else timeout)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> SharedVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


_session_pool: list[Any] = []


def _shared_pool() -> Any:
    """The session's verifier pool (2 workers, 5 s per pair), started on first use, so that a
    run that judges nothing starts none."""
    if not _session_pool:
        from process_guard import shared_processes

        from lensrl.verify.pool import VerifierPool  # the class itself, never the stand-in

        with shared_processes():
            pool = VerifierPool(workers=2, timeout=5.0)
            pool.start()
        _session_pool.append(pool)
    return _session_pool[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _session_pool:
        _session_pool.pop().close()


@pytest.fixture(scope="session")
def shared_verifier() -> Any:
    """The one verifier pool of the session, for tests that judge on a pool themselves."""
    return _shared_pool()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """In the fast set, from the test's first fixture to its last teardown, a ``VerifierPool``
    made by the code under test and the module-level ``verify``/``verify_batch`` judge on the
    session's pool instead of starting a server."""
    if item.get_closest_marker("slow") is not None:
        return (yield)
    import lensrl.verify
    import lensrl.verify.pool

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lensrl.verify, "VerifierPool", SharedVerifier)
        mp.setattr(lensrl.verify.pool, "default_pool", lambda workers=None: _shared_pool())
        return (yield)
