"""The verify tests judge on the session's warm verifier pool (tests/conftest.py: started once)."""

from __future__ import annotations

import pytest

from lensrl.verify import VerifierPool


@pytest.fixture(scope="session")
def pool(shared_verifier: VerifierPool) -> VerifierPool:
    return shared_verifier
