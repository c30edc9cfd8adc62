"""``results/study/tables.md``: the study's answers as Markdown tables, from ``summary.json``
alone, so that docs/study.md quotes numbers a rerun regenerates (``lensrl study
--summary-only``). Points are percentage points of pass@k; CIs are seed-level 95% intervals.
Every number is printed by :mod:`lensrl.compare.tables` (one style with ``lensrl compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lensrl.compare.tables import ci_text, p_text, pct, pp
from lensrl.eval.passk import parse_endpoints

LEVEL_BUCKETS = ("level_1", "level_2", "level_3", "level_4", "level_5", "levels_4-5")
# Fewer seed pairs than this make no claim either way: a t-test's sd from 2-4 pairs is itself
# too uncertain (a TOST "passes" whenever two diffs happen to agree), and the exact sign-flip
# test cannot reach p < 0.05 below 5 pairs.
MIN_PAIRS = 5


def endpoints(s: dict[str, Any]) -> list[tuple[str, int]]:
    """The declared endpoints, e.g. ``[("all", 8), ("levels_4-5", 16)]``."""
    return parse_endpoints(",".join(s["setting"]["endpoints"]), "setting.endpoints")


def cell(block: dict[str, Any], bucket: str, k: int) -> dict[str, Any] | None:
    """The ``pass@k`` entry of ``bucket`` in a summary block (``overall``/``by_level``)."""
    table = block.get("overall") if bucket == "all" else block.get("by_level", {}).get(bucket)
    return (table or {}).get(f"pass@{k}")


def _adjusted(cell: dict[str, Any]) -> str:
    """The key of a paired cell's adjusted p: ``p_holm`` on a primary cell, else ``q_bh``."""
    return "p_holm" if cell.get("q_bh") is None else "q_bh"


def _verdict(cell: dict[str, Any], p_key: str, pairs: int, alpha: float = 0.05) -> str:
    """Plain words for one comparison: detected (with its direction), equivalent within the
    margin (TOST, with the direction where the one-sided test finds one), or not detected."""
    if pairs < MIN_PAIRS:
        return f"too few pairs ({pairs} < {MIN_PAIRS}) for a claim"
    p = cell.get(p_key)
    if p is not None and p < alpha:
        return "**detected**, " + ("higher" if cell["diff"] > 0 else "lower")
    tost = cell.get("tost") or {}
    lean = {"higher": ", but higher (one-sided)", "lower": ", but lower (one-sided)"}.get(
        cell.get("direction") or "", "")
    if tost.get("equivalent"):
        return (f"no difference larger than ±{pp(tost['margin'], signed=False)} pp "
                f"(TOST p {p_text(tost['p'])}){lean}")
    mde = cell.get("mde_seed_t", cell.get("mde"))
    return f"not detected (MDE {'∞' if mde is None else pp(mde, signed=False)} pp){lean}"


def primary_table(s: dict[str, Any]) -> str:
    p = s["primary"]
    alpha = p.get("alpha", 0.05)
    rows = ["| endpoint | LENS − GRPO (pp) | seed-level 95% CI | p | p (Holm) | "
            f"TOST ±{pp(p['tost_margin'], signed=False)} pp p | MDE (pp) | power at "
            "target after Holm | answer |", "|---|---|---|---|---|---|---|---|---|"]
    for e in p["endpoints"]:
        mde = s.get("mde", {}).get(e["endpoint"], {})
        power = e.get("power_at_target_holm")
        rows.append(f"| {e['endpoint']} | {pp(e['diff'])} | {ci_text(e.get('ci95'))} | "
                    f"{p_text(e.get('p_value'))} | {p_text(e.get('p_holm'))} | "
                    f"{p_text((e.get('tost') or {}).get('p'))} | "
                    f"{pp(mde.get('mde'), signed=False)} | "
                    f"{'–' if power is None else f'{power:.2f}'} | "
                    f"{_verdict({**e, 'mde_seed_t': mde.get('mde')}, 'p_holm', mde.get('pairs', 0), alpha)} |")
    return "\n".join(rows)


def _mean_ci(c: dict[str, Any] | None) -> str:
    if not c or c.get("mean") is None:
        return "–"
    ci = c.get("ci95")
    return pct(c["mean"]) + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")


def methods_table(s: dict[str, Any]) -> str:
    """Every arm's score, then (with step-0 records) its change from step 0, paired by seed."""
    cols = [("all", 1), *endpoints(s)]
    step0 = s.get("from_step0") or {}
    rows = ["| arm | seeds | " + " | ".join(f"{b}:{k}" for b, k in cols)
            + "".join(f" | Δ from step 0, {b}:{k} (pp) [CI]" for b, k in cols[1:])
            + " | adv. share of negative groups | all-wrong groups |",
            "|---|---|" + "---|" * (2 * len(cols) - 1) + "---|---|"]
    for arm, m in s["methods"].items():
        cells = [_mean_ci(cell(m, b, k)) for b, k in cols]
        for b, k in cols[1:]:
            c = cell(step0.get(arm) or {}, b, k)
            cells.append("–" if not c else f"{pp(c['diff'])} {ci_text(c['ci95'])}")
        adv, neg = m.get("adv_share_negative") or {}, m.get("frac_negative") or {}
        rows.append(f"| `{arm}` | {len(m['seeds'])} | " + " | ".join(cells)
                    + f" | {pct(adv.get('mean'))} | {pct(neg.get('mean'))} |")
    return "\n".join(rows)


def step0_table(s: dict[str, Any]) -> str:
    """The warm-up checkpoint itself (arm ``step0``: scored with each seed's sampling), beside
    which every arm's change is read."""
    step0 = s.get("step0")
    if not step0:
        return "(no step-0 evaluation recorded: the warm-up was not scored)"
    cols = [("all", 1), *endpoints(s)]
    return "\n".join([
        "| | seeds | " + " | ".join(f"{b}:{k}" for b, k in cols) + " |",
        "|---|---|" + "---|" * len(cols),
        f"| step 0 (warm-up) | {len(step0['seeds'])} | "
        + " | ".join(_mean_ci(cell(step0, b, k)) for b, k in cols) + " |"])


def paired_table(s: dict[str, Any]) -> str:
    cols = [("all", 1), *endpoints(s)]
    alpha = s["setting"].get("alpha", 0.05)
    head = " | ".join(f"{b}:{k} Δ (pp) [CI], q" for b, k in cols)
    rows = [f"| comparison | pairs | {head} | answer on {cols[1][0]}:{cols[1][1]} |",
            "|---|---|" + "---|" * len(cols) + "---|"]
    for name, block in s["paired"].items():
        cells = []
        for b, k in cols:
            c = cell(block, b, k)
            cells.append("–" if not c else
                         f"{pp(c['diff'])} {ci_text(c['ci95'])}, {p_text(c.get(_adjusted(c)))}")
        main = cell(block, *cols[1])
        rows.append(f"| `{name}` | {block['pairs']} | " + " | ".join(cells) + " | "
                    + (_verdict(main, _adjusted(main), block["pairs"], alpha) if main else "–")
                    + " |")
    return "\n".join(rows)


def family_table(s: dict[str, Any]) -> str:
    """The declared secondary family: the endpoints × every comparison but the primary one,
    BH inside it."""
    alpha = s["setting"].get("alpha", 0.05)
    rows = ["| comparison | endpoint | pairs | Δ (pp) | seed-level 95% CI | p | q (BH, family) | "
            "TOST p | answer |", "|---|---|---|---|---|---|---|---|---|"]
    for name, block in s["paired"].items():
        for b, k in endpoints(s):
            c = cell(block, b, k)
            if not c or c.get("role") != "secondary":
                continue
            rows.append(f"| `{name}` | {b}:{k} | {block['pairs']} | {pp(c['diff'])} | "
                        f"{ci_text(c['ci95'])} | {p_text(c.get('p_value'))} | "
                        f"{p_text(c.get('q_bh'))} | {p_text((c.get('tost') or {}).get('p'))} | "
                        f"{_verdict(c, 'q_bh', block['pairs'], alpha)} |")
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
            m, c = cell(method, b, k), cell(block, b, k)
            cells.append(("–" if not m else pct(m["mean"]))
                         + ("" if not c else f", {pp(c['diff'])} {ci_text(c['ci95'])}"))
        rows.append(f"| {alpha} | `{a['arm']}` | {len(a['seeds'])} | "
                    f"{pct((a.get('adv_share_negative') or {}).get('mean'))} | "
                    + " | ".join(cells) + " |")
    return "\n".join(rows)


def by_level_table(s: dict[str, Any], comparison: str, ks: Sequence[int] = (1, 2, 4, 8, 16)) -> str:
    block = s["paired"].get(comparison)
    if not block:
        return f"({comparison}: no finished pairs)"
    rows = ["| bucket | " + " | ".join(f"Δ pass@{k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks)]
    for bucket in ("all", *LEVEL_BUCKETS):
        cells = [(cell(block, bucket, k)) for k in ks]
        rows.append(f"| {bucket} | " + " | ".join(
            "–" if c is None else f"{pp(c['diff'])} {ci_text(c['ci95'])}" for c in cells) + " |")
    return "\n".join(rows)


def cost_table(s: dict[str, Any]) -> str:
    rows = ["| arm | runs | train s / run | eval s / run |", "|---|---|---|---|"]
    for arm, c in s["cost"].items():
        if isinstance(c, dict) and c.get("runs"):
            timed = c.get("timed", c["runs"])
            per = ["–" if c[key] is None or not timed else f"{c[key] / timed:.0f}"
                   for key in ("train_s", "eval_s")]
            rows.append(f"| `{arm}` | {c['runs']} | {per[0]} | {per[1]} |")
    return "\n".join(rows)


def render(s: dict[str, Any]) -> str:
    st = s["setting"]
    neg = st.get("frac_negative_at_step_1") or {}
    fam = st.get("families") or {}
    sec = (fam.get("secondary") or {}).get("size", 0)
    expl = (fam.get("exploratory") or {}).get("size", 0)
    neg_ci = neg.get("ci95")
    parts = [
        "# Study tables (generated from summary.json by lensrl.study.tables)",
        f"Runs finished: {st['runs_done']} of {st['runs_planned']}"
        + ("" if s["complete"] else " (**partial**: the study has not finished)")
        + f". G = {st['G']}, {st['prompts_per_step']} prompts a step, {st['rl_steps']} RL steps "
        f"({st['samples_per_run']} samples a run); all-wrong groups at step 1: "
        f"{pct(neg.get('mean'))}"
        + (f" [{pct(neg_ci[0])}, {pct(neg_ci[1])}] over {neg.get('seeds')} seeds"
           if neg_ci else "")
        + f". Differences in percentage points; CIs are seed-level 95%; α = {st.get('alpha', 0.05)}.",
        "## Primary (declared): LENS vs GRPO, Holm over the two endpoints", primary_table(s),
        f"## Secondary (declared): {sec} cells, the endpoints × the other comparisons, "
        "Benjamini–Hochberg inside this family", family_table(s),
        "## Step 0: the shared warm-up", step0_table(s),
        "## Every arm", methods_table(s),
        f"## Paired comparisons (q: Benjamini–Hochberg within each family; the {expl} cells "
        "off the declared endpoints are exploratory; p (Holm) on the primary cells)",
        paired_table(s),
        "## α dose-response", alpha_table(s),
        f"## {s['primary']['comparison']} by level", by_level_table(s, s["primary"]["comparison"]),
        "## Cost", cost_table(s),
    ]
    return "\n\n".join(parts) + "\n"
