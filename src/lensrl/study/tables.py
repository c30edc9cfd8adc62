"""``results/study/tables.md``: the study's answers as Markdown tables, from ``summary.json``
alone, so that docs/study.md quotes numbers a rerun regenerates (``lensrl study
--summary-only``). Points are percentage points of pass@k; CIs are seed-level 95% intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LEVEL_BUCKETS = ("level_1", "level_2", "level_3", "level_4", "level_5", "levels_4-5")
# Fewer seed pairs than this make no claim either way: a t-test's sd from 2-4 pairs is itself
# too uncertain (a TOST "passes" whenever two diffs happen to agree), and the exact sign-flip
# test cannot reach p < 0.05 below 5 pairs.
MIN_PAIRS = 5


def _pp(x: float | None, signed: bool = True) -> str:
    return "–" if x is None else (f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}")


def _ci(ci: Sequence[float] | None) -> str:
    return "–" if not ci else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _p(x: float | None) -> str:
    return "–" if x is None else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def endpoints(s: dict[str, Any]) -> list[tuple[str, int]]:
    """The declared endpoints, e.g. ``[("all", 8), ("levels_4-5", 16)]``."""
    out = []
    for e in s["setting"]["endpoints"]:
        bucket, _, k = e.rpartition(":")
        out.append((bucket, int(k)))
    return out


def _cell(block: dict[str, Any], bucket: str, k: int) -> dict[str, Any] | None:
    table = block.get("overall") if bucket == "all" else block.get("by_level", {}).get(bucket)
    return (table or {}).get(f"pass@{k}")


def _adjusted(cell: dict[str, Any]) -> str:
    """The key of a paired cell's adjusted p: ``p_holm`` on a primary cell, else ``q_bh``."""
    return "p_holm" if cell.get("q_bh") is None else "q_bh"


def _verdict(cell: dict[str, Any], p_key: str, pairs: int) -> str:
    """Plain words for one comparison: detected, equivalent (TOST), or not detected."""
    if pairs < MIN_PAIRS:
        return f"too few pairs ({pairs} < {MIN_PAIRS}) for a claim"
    p = cell.get(p_key)
    if p is not None and p < 0.05:
        return "**detected**, " + ("higher" if cell["diff"] > 0 else "lower")
    tost = cell.get("tost") or {}
    if tost.get("equivalent"):
        return f"no difference beyond ±{_pp(tost['margin'], False)} pp (TOST p {_p(tost['p'])})"
    return f"not detected (MDE {_pp(cell.get('mde_seed_t'), False)} pp)"


def primary_table(s: dict[str, Any]) -> str:
    p = s["primary"]
    rows = ["| endpoint | LENS − GRPO (pp) | seed-level 95% CI | p | p (Holm) | TOST ±2 pp p | "
            "MDE (pp) | answer |", "|---|---|---|---|---|---|---|---|"]
    for e in p["endpoints"]:
        mde = s.get("mde", {}).get(e["endpoint"], {})
        rows.append(f"| {e['endpoint']} | {_pp(e['diff'])} | {_ci(e['ci95'])} | "
                    f"{_p(e['p_value'])} | {_p(e['p_holm'])} | {_p((e.get('tost') or {}).get('p'))}"
                    f" | {_pp(mde.get('mde'), False)} | "
                    f"{_verdict({**e, 'mde_seed_t': mde.get('mde')}, 'p_holm', mde.get('pairs', 0))} |")
    return "\n".join(rows)


def methods_table(s: dict[str, Any]) -> str:
    cols = [("all", 1), *endpoints(s)]
    rows = ["| arm | seeds | " + " | ".join(f"{b}:{k}" for b, k in cols)
            + " | adv. share of negative groups | all-wrong groups |",
            "|---|---|" + "---|" * len(cols) + "---|---|"]

    def mean_ci(c: dict[str, Any] | None) -> str:
        if not c:
            return "–"
        ci = c.get("ci95")
        return f"{100 * c['mean']:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")

    for arm, m in s["methods"].items():
        cells = [mean_ci(_cell(m, b, k)) for b, k in cols]
        adv, neg = m.get("adv_share_negative") or {}, m.get("frac_negative") or {}
        rows.append(f"| `{arm}` | {len(m['seeds'])} | " + " | ".join(cells)
                    + f" | {_pct(adv.get('mean'))} | {_pct(neg.get('mean'))} |")
    return "\n".join(rows)


def _pct(x: float | None) -> str:
    return "–" if x is None else (f"{100 * x:.2f}%" if x < 0.1 else f"{100 * x:.1f}%")


def paired_table(s: dict[str, Any]) -> str:
    cols = [("all", 1), *endpoints(s)]
    head = " | ".join(f"{b}:{k} Δ (pp) [CI], q" for b, k in cols)
    rows = [f"| comparison | pairs | {head} | answer on {cols[1][0]}:{cols[1][1]} |",
            "|---|---|" + "---|" * len(cols) + "---|"]
    for name, block in s["paired"].items():
        cells = []
        for b, k in cols:
            c = _cell(block, b, k)
            cells.append("–" if not c else
                         f"{_pp(c['diff'])} {_ci(c['ci95'])}, {_p(c.get(_adjusted(c)))}")
        main = _cell(block, *cols[1])
        rows.append(f"| `{name}` | {block['pairs']} | " + " | ".join(cells) + " | "
                    + (_verdict(main, _adjusted(main), block["pairs"]) if main else "–") + " |")
    return "\n".join(rows)


def alpha_table(s: dict[str, Any]) -> str:
    cols = endpoints(s)
    rows = ["| α | arm | seeds | adv. share of negative groups | "
            + " | ".join(f"{b}:{k}, Δ vs GRPO (pp) [CI]" for b, k in cols) + " |",
            "|---|---|---|---|" + "---|" * len(cols)]
    for alpha, a in s["alpha_sweep"].items():
        method = s["methods"][a["arm"]]
        block = s["paired"].get(f"{a['arm']}_vs_{s['setting']['baseline']}", {})
        cells = []
        for b, k in cols:
            m, c = _cell(method, b, k), _cell(block, b, k)
            cells.append(("–" if not m else f"{100 * m['mean']:.1f}")
                         + ("" if not c else f", {_pp(c['diff'])} {_ci(c['ci95'])}"))
        rows.append(f"| {alpha} | `{a['arm']}` | {len(a['seeds'])} | "
                    f"{_pct((a.get('adv_share_negative') or {}).get('mean'))} | "
                    + " | ".join(cells) + " |")
    return "\n".join(rows)


def by_level_table(s: dict[str, Any], comparison: str, ks: Sequence[int] = (1, 2, 4, 8, 16)) -> str:
    block = s["paired"].get(comparison)
    if not block:
        return f"({comparison}: no finished pairs)"
    rows = ["| bucket | " + " | ".join(f"Δ pass@{k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks)]
    for bucket in ("all", *LEVEL_BUCKETS):
        cells = [(_cell(block, bucket, k)) for k in ks]
        rows.append(f"| {bucket} | " + " | ".join(
            "–" if c is None else f"{_pp(c['diff'])} {_ci(c['ci95'])}" for c in cells) + " |")
    return "\n".join(rows)


def cost_table(s: dict[str, Any]) -> str:
    rows = ["| arm | runs | train s / run | eval s / run |", "|---|---|---|---|"]
    for arm, c in s["cost"].items():
        if isinstance(c, dict) and c.get("runs"):
            rows.append(f"| `{arm}` | {c['runs']} | {c['train_s'] / c['runs']:.0f} | "
                        f"{c['eval_s'] / c['runs']:.0f} |")
    return "\n".join(rows)


def render(s: dict[str, Any]) -> str:
    st = s["setting"]
    neg = st.get("frac_negative_at_step_1") or {}
    parts = [
        "# Study tables (generated from summary.json by lensrl.study.tables)",
        f"Runs finished: {st['runs_done']} of {st['runs_planned']}"
        + ("" if s["complete"] else " (**partial**: the study has not finished)")
        + f". G = {st['G']}, {st['prompts_per_step']} prompts a step, {st['rl_steps']} RL steps "
        f"({st['samples_per_run']} samples a run); all-wrong groups at step 1: "
        f"{_pct(neg.get('mean'))}. Differences in percentage points; CIs are seed-level 95%.",
        "## Primary (declared): LENS vs GRPO, Holm over the two endpoints", primary_table(s),
        "## Every arm", methods_table(s),
        "## Paired comparisons (q: Benjamini–Hochberg; p (Holm) on the primary cells)",
        paired_table(s),
        "## α dose-response", alpha_table(s),
        f"## {s['primary']['comparison']} by level", by_level_table(s, s["primary"]["comparison"]),
        "## Cost", cost_table(s),
    ]
    return "\n\n".join(parts) + "\n"
