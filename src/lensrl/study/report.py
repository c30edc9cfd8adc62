"""``<results>/report/``: ``lensrl report`` over the study, from the committed records alone.

The report reads run folders; the study's folders (checkpoints, logs) are not committed, so each
record is rebuilt into a small run folder (config, the curves, the eval file; see
lensrl.study.records.materialize) in a temporary directory and reported from there. The report
groups runs by estimator, so it takes the first arm of each estimator (the α arms would be pooled
with ``lens``; they are in summary.json's ``alpha_sweep``). First-study records carry no
per-problem counts: no report is rebuilt from them.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lensrl.study.config import StudyConfig
from lensrl.study.records import STEP0, load_study_data, materialize

log = logging.getLogger("lensrl.study")


def write_report(cfg: StudyConfig) -> Path | None:
    """Write ``<results>/report/`` (index.html, report.md, figures); None when no record can
    be rebuilt into a run folder."""
    from lensrl.report import build_report

    data = load_study_data(cfg.results)
    first: dict[str, str] = {}
    for arm, spec in cfg.arms.items():
        first.setdefault(spec.estimator, arm)
    chosen = [r for arm in first.values() for r in data.arm(arm).values()
              if r.arm != STEP0 and not r.legacy]
    if not chosen:
        log.info("study: no record with per-problem counts in %s, no report", data.path)
        return None
    endpoints = ",".join(cfg.stats.endpoints)
    with tempfile.TemporaryDirectory(prefix="lensrl-study-report-") as tmp:
        dirs = [materialize(r, Path(tmp) / r.arm / f"seed{r.seed}") for r in chosen]
        return build_report(dirs, Path(cfg.results) / "report", primary=endpoints,
                            margin=cfg.stats.tost_margin)
