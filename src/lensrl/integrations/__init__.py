"""Thin adapters that put lensrl.core inside other trainers (TRL, verl), behind optional extras."""
