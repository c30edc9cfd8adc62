"""One warm verifier pool for the whole verify test session (workers start once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lensrl.verify import VerifierPool


@pytest.fixture(scope="session")
def pool() -> Iterator[VerifierPool]:
    with VerifierPool(workers=2, timeout=5.0) as p:
        yield p
