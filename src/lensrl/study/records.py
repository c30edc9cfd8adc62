"""The study's committed data: one record per finished run, in ``<results>/runs.json.gz``.

Run folders (checkpoints, logs) are too large to commit and do not outlive the machine; a record
keeps what every table needs, so that ``lensrl study --summary-only`` rebuilds summary.json,
tables.md and the report from committed files alone:

* ``values``: the run's score on each bucket and k (mean pass@k over the bucket's problems);
* ``problems``: the per-problem counts behind them (ids, levels, samples ``n``, correct ``c``);
* ``metrics``: training metrics the summary reports (``adv_share_negative``, ``frac_negative``,
  ``frac_negative_step1``), and ``series``: the per-step curves the report draws;
* ``train_s``, ``eval_s``, the fully resolved ``config`` and ``provenance`` (git commit and
  whether the tree was dirty, package versions, the machine).

Arm ``step0`` holds the shared warm-up checkpoint, evaluated with seed s's sampling stream, so that
every arm's change from its start can be paired by seed. Records imported from the first run of
the study (2026-12-02), whose folders were not kept, have ``values`` but no ``problems`` and no
metrics; ``provenance.source`` says so, and a re-run of that (arm, seed) replaces the record.

File shape (gzip, JSON)::

    {"format": 1,
     "problem_sets": {"<key>": {"ids": [...], "levels": [...]}},
     "runs": [{"arm", "seed", "step", "values": {bucket: {k: v}},
               "problems": {"set": "<key>", "n": [...], "c": [...]} | null,
               "metrics", "series": [{"step": 1, "reward/mean": ..}, ..],
               "train_s", "eval_s", "sampling", "config", "provenance"}, ...]}
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.eval.passk import DEFAULT_KS, bucket_masks, pass_at_k_per_problem

RECORDS_FILE = "runs.json.gz"
FORMAT = 1
STEP0 = "step0"  # the arm name of the warm-up checkpoint's evaluations
# Where the first study's per-seed values come from: its run folders were not kept.
LEGACY_SOURCE = ("results/study/first/summary.json, the first study (2026-12-02, commit 0164ea0); "
                 "run folders not kept, so no per-problem counts")

Values = dict[str, dict[int, float]]


@dataclass(frozen=True)
class ProblemCounts:
    """One evaluation's per-problem counts, ``m`` problems: ``ids``, ``levels`` ``(m,)``,
    ``n`` samples and ``c`` correct ``(m,)`` int arrays."""

    ids: tuple[str, ...]
    levels: tuple[int | None, ...]
    n: np.ndarray
    c: np.ndarray

    def values(self, ks: Sequence[int] = DEFAULT_KS) -> Values:
        """``{bucket: {k: mean pass@k}}`` over each bucket's problems (k <= the fewest samples)."""
        n, c = self.n.tolist(), self.c.tolist()
        per = {k: pass_at_k_per_problem(n, c, k) for k in ks if k <= min(n)}
        return {bucket: {k: float(v[mask].mean()) for k, v in per.items()}
                for bucket, mask in bucket_masks(list(self.levels)).items()}


@dataclass(frozen=True)
class RunRecord:
    """One finished run of the study (or, for arm ``step0``, one evaluation of the warm-up)."""

    arm: str
    seed: int
    step: int
    values: Values
    problems: ProblemCounts | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    series: list[dict[str, float]] = field(default_factory=list)
    train_s: float | None = None
    eval_s: float | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        return self.problems is None


@dataclass
class StudyData:
    """Every record of a study, keyed by ``(arm, seed)``; ``path`` is the file they came from."""

    records: dict[tuple[str, int], RunRecord]
    path: Path

    def arm(self, name: str) -> dict[int, RunRecord]:
        """``{seed: record}`` of one arm."""
        return {s: r for (a, s), r in sorted(self.records.items()) if a == name}


# --- provenance ------------------------------------------------------------------------------


def git_state(root: Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the checkout lensrl runs from (None, None outside a git tree).
    ``dirty`` ignores untracked files: run folders and caches are untracked on purpose."""
    where = root or Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=where, capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def provenance() -> dict[str, Any]:
    """What produced a record: the code (git commit, dirty tree), the versions and the machine
    (lensrl.bench.common.machine: CPU, cores, torch threads, CPU capability, load)."""
    import lensrl
    from lensrl.bench.common import machine

    m = machine()
    return {**git_state(), "lensrl": lensrl.__version__, "torch": m["torch"],
            "transformers": m["transformers"], "python": m["python"], "machine": m}


# --- from a run folder -----------------------------------------------------------------------


def counts_of(evaluation: dict[str, Any]) -> ProblemCounts:
    """The per-problem counts of an eval file (``lensrl eval``'s ``problems`` list)."""
    probs = evaluation["problems"]
    return ProblemCounts(ids=tuple(str(p["id"]) for p in probs),
                         levels=tuple(p.get("level") for p in probs),
                         n=np.array([int(p["n"]) for p in probs]),
                         c=np.array([int(p["c"]) for p in probs]))


def training_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """From the rows of metrics.jsonl: the means over steps of the metrics the summary reports,
    and the all-wrong share at the first step (what the warm-up was tuned for)."""
    out: dict[str, float] = {}
    for key, name in (("lens/adv_share_negative", "adv_share_negative"),
                      ("groups/frac_negative", "frac_negative")):
        vals = [float(r[key]) for r in rows
                if isinstance(r.get(key), int | float) and np.isfinite(r[key])]
        if vals:
            out[name] = float(np.mean(vals))
            if name == "frac_negative":
                out["frac_negative_step1"] = vals[0]
    return out


def curves(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The rows of metrics.jsonl cut to the keys the report draws (lensrl.report.plots), finite
    values only: a few KB a run instead of the whole log."""
    from lensrl.report.plots import LENS_PANELS, TRAINING_PANELS

    keys = {"step", *(k for k, _ in TRAINING_PANELS + LENS_PANELS)}
    return [{k: float(v) for k, v in row.items()
             if k in keys and isinstance(v, int | float) and np.isfinite(v)}
            for row in rows]


def record_from_run(run_dir: Path, arm: str, seed: int, step: int, *,
                    train_s: float | None, eval_s: float | None,
                    made_by: dict[str, Any] | None = None) -> RunRecord:
    """The record of a finished run folder: its evaluation at ``step``, metrics and config.
    ``made_by``: the provenance taken by the process that trained and evaluated it (the code
    and machine that ran); else this process's."""
    from lensrl.runs import read_config, read_eval, read_metrics

    ev = read_eval(run_dir, step)
    counts = counts_of(ev)
    rows = read_metrics(run_dir)  # read once, for the summary's metrics and the report's curves
    return RunRecord(arm=arm, seed=seed, step=step, values=counts.values(), problems=counts,
                     metrics=training_metrics(rows), series=curves(rows),
                     train_s=train_s, eval_s=eval_s,
                     sampling=dict(ev.get("sampling") or {}), config=read_config(run_dir),
                     provenance=dict(made_by) if made_by else provenance())


# --- the file --------------------------------------------------------------------------------


def _set_key(ids: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]


def _to_json(r: RunRecord, sets: dict[str, Any]) -> dict[str, Any]:
    problems = None
    if r.problems is not None:
        key = _set_key(r.problems.ids)
        sets.setdefault(key, {"ids": list(r.problems.ids), "levels": list(r.problems.levels)})
        problems = {"set": key, "n": r.problems.n.tolist(), "c": r.problems.c.tolist()}
    return {"arm": r.arm, "seed": r.seed, "step": r.step,
            "values": {b: {str(k): v for k, v in t.items()} for b, t in r.values.items()},
            "problems": problems, "metrics": r.metrics, "series": r.series,
            "train_s": r.train_s,
            "eval_s": r.eval_s, "sampling": r.sampling, "config": r.config,
            "provenance": r.provenance}


def _from_json(d: dict[str, Any], sets: dict[str, Any], where: str) -> RunRecord:
    try:
        problems = None
        if d.get("problems") is not None:
            ps = sets[d["problems"]["set"]]
            problems = ProblemCounts(ids=tuple(ps["ids"]), levels=tuple(ps["levels"]),
                                     n=np.array(d["problems"]["n"], dtype=int),
                                     c=np.array(d["problems"]["c"], dtype=int))
        return RunRecord(
            arm=str(d["arm"]), seed=int(d["seed"]), step=int(d["step"]),
            values={b: {int(k): float(v) for k, v in t.items()} for b, t in d["values"].items()},
            problems=problems, metrics={k: float(v) for k, v in (d.get("metrics") or {}).items()},
            series=list(d.get("series") or []),
            train_s=d.get("train_s"), eval_s=d.get("eval_s"), sampling=d.get("sampling") or {},
            config=d.get("config"), provenance=d.get("provenance") or {})
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: a malformed run record ({type(err).__name__}: {err})") from None


def load_study_data(results_dir: str | os.PathLike[str]) -> StudyData:
    """Every record in ``<results_dir>/runs.json.gz`` (none when the file does not exist)."""
    path = Path(results_dir) / RECORDS_FILE
    if not path.is_file():
        return StudyData({}, path)
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a gzip JSON file of study records ({err})") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: records format {data.get('format')!r}, this lensrl reads "
                         f"{FORMAT}")
    sets = data.get("problem_sets", {})
    records = [_from_json(d, sets, f"{path}: runs[{i}]") for i, d in enumerate(data["runs"])]
    return StudyData({(r.arm, r.seed): r for r in records}, path)


def write_study_data(results_dir: str | os.PathLike[str], records: Iterable[RunRecord]) -> Path:
    """Write every record, sorted by arm and seed, atomically. The gzip header carries no time,
    so the same records give the same bytes (a clean git diff)."""
    from lensrl.runs import atomic_write_bytes

    sets: dict[str, Any] = {}
    runs = [_to_json(r, sets) for r in sorted(records, key=lambda r: (r.arm, r.seed))]
    text = json.dumps({"format": FORMAT, "problem_sets": sets, "runs": runs},
                      separators=(",", ":"), allow_nan=False)
    path = Path(results_dir) / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, gzip.compress(text.encode(), compresslevel=9, mtime=0))
    return path


def save_record(results_dir: str | os.PathLike[str], record: RunRecord) -> Path:
    """Add ``record`` (replacing the one of the same arm and seed). Replacing a first-study
    record keeps, in ``provenance.replaced``, the largest difference between the old and the
    new values: 0 when the re-run reproduced the first study exactly."""
    data = load_study_data(results_dir)
    old = data.records.get((record.arm, record.seed))
    if old is not None and old.legacy:
        gap = max((abs(record.values[b][k] - v) for b, t in old.values.items()
                   for k, v in t.items() if k in record.values.get(b, {})), default=None)
        record.provenance["replaced"] = {"source": old.provenance.get("source"),
                                         "max_abs_diff": gap}
    data.records[(record.arm, record.seed)] = record
    return write_study_data(results_dir, data.records.values())


def materialize(record: RunRecord, run_dir: Path) -> Path:
    """A run folder holding what ``lensrl report`` reads (config.json, metrics.jsonl, the eval
    file), rebuilt from a record: the study's report needs no checkpoint, only committed data."""
    from lensrl.eval import build_result, write_eval
    from lensrl.runs import METRICS_FILE, write_config

    if record.problems is None or record.config is None:
        raise ValueError(f"{record.arm} seed {record.seed}: a first-study record has no "
                         "per-problem counts to rebuild a run folder from")
    p = record.problems
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, record.config)
    (run_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in record.series))
    rows = [{"id": i, "level": lv, "n": int(n), "c": int(c)}
            for i, lv, n, c in zip(p.ids, p.levels, p.n, p.c)]
    write_eval(run_dir, record.step, build_result(rows, sampling=record.sampling, resamples=200))
    return run_dir


# --- the first study's values ----------------------------------------------------------------


def legacy_records(summary: dict[str, Any]) -> list[RunRecord]:
    """Records of every (arm, seed) in a first-study summary.json, from the per-seed values its
    paired cells kept. An arm in several comparisons must have the same value in each."""
    values: dict[tuple[str, int], Values] = {}
    for name, block in summary.get("paired", {}).items():
        method, baseline = name.split("_vs_")
        tables = [("all", block["overall"]), *block["by_level"].items()]
        for bucket, table in tables:
            for key, cell in table.items():
                k = int(key.removeprefix("pass@"))
                for side, arm in (("method", method), ("baseline", baseline)):
                    for entry in cell["per_seed"][side]:
                        slot = values.setdefault((arm, int(entry["seed"])), {}).setdefault(
                            bucket, {})
                        if k in slot and slot[k] != entry["value"]:
                            raise ValueError(f"{name} {bucket} {key}: {arm} seed "
                                             f"{entry['seed']} differs between comparisons")
                        slot[k] = float(entry["value"])
    steps = int(summary.get("setting", {}).get("rl_steps", 0))
    return [RunRecord(arm=a, seed=s, step=steps, values=v,
                      provenance={"source": LEGACY_SOURCE, "commit": "0164ea0"})
            for (a, s), v in sorted(values.items())]
