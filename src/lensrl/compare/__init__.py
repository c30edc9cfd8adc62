"""Comparing runs: arms of seed replicates, the seed-level tests, tables, and seed planning.

* :mod:`lensrl.compare.stats`: every statistic (tests, intervals, power, MDE, TOST, Holm, BH,
  seeds needed, the bootstrap and its seeded streams); the study summary uses the same ones;
* :mod:`lensrl.compare.arms` and :mod:`lensrl.compare.pooling`: run folders to aligned arms,
  and which runs may be pooled;
* :mod:`lensrl.compare.cells`: one comparison's cells (:func:`~lensrl.compare.cells.compare_runs`);
* :mod:`lensrl.compare.plan`: seeds per arm for a target difference, from pilot runs;
* :mod:`lensrl.compare.tables`: every table and number format;
* :mod:`lensrl.compare.cli`: ``lensrl compare`` and ``lensrl plan``.

The package imports nothing here, so that :mod:`lensrl.eval.passk` can use
:mod:`lensrl.compare.stats` without importing the rest (docs/evaluation.md).
"""
