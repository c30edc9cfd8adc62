"""``<results>/report/``: ``lensrl report`` over the study, from the committed records alone.

The report reads run folders; the study's folders (checkpoints, logs) are not committed, so each
record is rebuilt into a small run folder (config, the curves, the eval file; see
lensrl.study.records.materialize) in a temporary directory and reported from there. The report
groups runs by estimator, so it takes the first arm of each estimator (the α arms would be pooled
with ``lens``; they are in summary.json's ``alpha_sweep``). It opens with every arm's change from
step 0 (summary.json's ``from_step0``), so a reader sees what RL did before the differences
between methods. First-study records carry no per-problem counts: no report is rebuilt from them.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from lensrl.study.config import StudyConfig
from lensrl.study.records import load_study_data, materialize

log = logging.getLogger("lensrl.study")


def write_report(cfg: StudyConfig) -> Path | None:
    """Write ``<results>/report/`` (index.html, report.md, figures); None when no record can
    be rebuilt into a run folder."""
    from lensrl.report import build_report

    data = load_study_data(cfg.results)
    first: dict[str, str] = {}
    for arm, spec in cfg.arms.items():
        first.setdefault(spec.estimator, arm)
    chosen = [r for arm in first.values() for r in data.arm(arm).values() if not r.legacy]
    if not chosen:
        log.info("study: no record with per-problem counts in %s, no report", data.path)
        return None
    summary_path = Path(cfg.results) / "summary.json"
    preface = step0_blocks(json.loads(summary_path.read_text())) if summary_path.is_file() else []
    endpoints = ",".join(cfg.stats.endpoints)
    with tempfile.TemporaryDirectory(prefix="lensrl-study-report-") as tmp:
        dirs = [materialize(r, Path(tmp) / r.arm / f"seed{r.seed}") for r in chosen]
        return build_report(dirs, Path(cfg.results) / "report", primary=endpoints,
                            margin=cfg.stats.tost_margin, preface=preface)


def step0_blocks(summary: dict[str, Any]) -> list[Any]:
    """A heading, a line and a table: each arm's change from the warm-up on the declared
    endpoints and pass@1, paired by seed (none when the warm-up was not scored)."""
    from lensrl.compare.tables import ci_text, pct, pp
    from lensrl.report.render import Heading, Para, Table
    from lensrl.study.tables import cell, endpoints

    step0, changes = summary.get("step0"), summary.get("from_step0") or {}
    if not step0 or not changes:
        return []
    cols = [("all", 1), *endpoints(summary)]
    rows = [["step 0 (warm-up)", str(len(step0["seeds"])),
             *(pct((cell(step0, b, k) or {}).get("mean")) for b, k in cols)]]
    for arm, block in changes.items():
        rows.append([arm, str(block.get("pairs", "")),
                     *(f"{pp(c.get('diff'))} {ci_text(c.get('ci95'))}"
                       for c in ((cell(block, b, k) or {}) for b, k in cols))])
    return [Heading("What RL did: each arm's change from step 0"),
            Para("The shared warm-up scored with each seed's sampling, then each arm's final "
                 "checkpoint minus it, paired by seed: the mean difference in percentage points "
                 "with its seed-level 95% t-interval (see docs/study.md)."),
            Table(["arm", "seeds", *(f"{b}:{k}" for b, k in cols)], rows)]
