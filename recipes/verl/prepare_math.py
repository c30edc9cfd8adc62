"""MATH-format problems -> verl's RL parquet (one row per problem).

Input: a local MATH-format file or folder (``problem, solution, answer, level, subject`` records;
read with ``lensrl.data.load_problems`` when that module is installed, else as JSON/JSONL here).
Output row, the layout verl's RLHFDataset and our compute_score read::

    data_source: "math"          prompt: [{"role": "user", "content": <problem + boxed instruction>}]
    ability: "math"              reward_model: {"style": "rule", "ground_truth": <answer>}
    extra_info: {"id", "level", "subject", "split", "index"}

Usage: python recipes/verl/prepare_math.py --train MATH/train.jsonl --test MATH/test.jsonl --out ~/data/lens_math
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def _fallback_records(path: Path) -> list[dict[str, Any]]:
    """JSON list, JSONL, or a folder of MATH's one-problem JSON files."""
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    records: list[dict[str, Any]] = []
    for f in files:
        text = f.read_text()
        if f.suffix == ".jsonl":
            records += [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            records += data if isinstance(data, list) else [{"id": f.stem, **data}]
    return records


def _fallback_load(path: Path) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(_fallback_records(path)):
        if not r.get("answer"):
            raise ValueError(f"{path}: record {i} has no 'answer' (extract it before training)")
        prompt = f"{r['problem']}\n\n{INSTRUCTION}"
        out.append({**r, "id": str(r.get("id", r.get("unique_id", i))), "prompt": prompt})
    return out


def load(path: Path) -> list[dict[str, Any]]:
    """Records with ``id, prompt, answer, level, subject``; lensrl.data decides when present."""
    try:
        from lensrl.data import format_prompt, load_problems
    except ImportError:
        return _fallback_load(path)
    return [
        {
            "id": p.id,
            "prompt": format_prompt(p),
            "answer": p.answer,
            "level": p.level,
            "subject": p.subject,
        }
        for p in load_problems(path)
    ]


def to_rows(records: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    return [
        {
            "data_source": "math",
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(r["answer"])},
            "extra_info": {
                "id": str(r["id"]),
                "level": str(r.get("level", "")),
                "subject": str(r.get("subject", "")),
                "split": split,
                "index": i,
            },
        }
        for i, r in enumerate(records)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.expanduser().mkdir(parents=True, exist_ok=True)
    for split, path in (("train", args.train), ("test", args.test)):
        rows = to_rows(load(path.expanduser()), split)
        pq.write_table(pa.Table.from_pylist(rows), args.out.expanduser() / f"{split}.parquet")
        print(f"{split}: {len(rows)} problems -> {args.out / f'{split}.parquet'}")


if __name__ == "__main__":
    main()
