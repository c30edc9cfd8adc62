"""Fixtures shared by the whole suite, and the rule that keeps the fast set fast.

The fast set (``make test``) starts no process of its own: a test that does (``subprocess``,
``os.fork``, ``multiprocessing``, ``os.posix_spawn``, ``os.system``), in its body or in a fixture
it sets up, fails unless it is marked ``@pytest.mark.slow`` (``make test-slow``). The one
exception is the verifier pool of the session (``shared_verifier``): started once, by this file,
and lent to every fast test that judges answers, the trainer's included (tests/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import torch

# process_guard: the fast set starts no process; pytester: tests/test_process_guard.py
pytest_plugins = ("process_guard", "pytester")


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

    def __init__(self, pool: Any, workers: int | None = None, timeout: float = 5.0, *,
                 strict: bool = False, **_: Any) -> None:
        self._pool, self.timeout, self.strict = pool, timeout, strict
        self.workers = pool.workers

    def verify(self, *, gold: str, prediction: str, strict: bool | None = None,
               timeout: float | None = None) -> Any:
        return self.verify_batch([gold], [prediction], strict=strict, timeout=timeout)[0]

    def verify_batch(self, golds: Sequence[str], predictions: Sequence[str], *,
                     strict: bool | None = None, timeout: float | None = None) -> list[Any]:
        return self._pool.verify_batch(golds, predictions,
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


@pytest.fixture(scope="session")
def shared_verifier() -> Iterator[Any]:
    """The one verifier pool of the session (2 workers, 5 s per pair), started once."""
    from process_guard import shared_processes

    from lensrl.verify import VerifierPool

    with shared_processes():
        pool = VerifierPool(workers=2, timeout=5.0)
        pool.start()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(autouse=True)
def _fast_tests_judge_on_the_shared_verifier(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the fast set, a ``VerifierPool`` made by the code under test, or the module-level
    ``verify``/``verify_batch``, judges on ``shared_verifier`` instead of starting a server."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    import lensrl.verify
    import lensrl.verify.pool

    shared: list[Any] = []

    def pool() -> Any:
        if not shared:  # started on the first use, so a test that judges nothing starts none
            shared.append(request.getfixturevalue("shared_verifier"))
        return shared[0]

    def view(*args: Any, **kwargs: Any) -> SharedVerifier:
        return SharedVerifier(pool(), *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lensrl.verify, "VerifierPool", view)
        mp.setattr(lensrl.verify.pool, "default_pool", lambda workers=None: pool())
        yield
