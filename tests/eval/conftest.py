"""Fixtures: fake run folders and a seeded generator (tests/eval_kit.py)."""

from eval_kit import make_run, rng

__all__ = ["make_run", "rng"]
