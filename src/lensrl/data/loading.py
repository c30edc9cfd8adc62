"""Load MATH-style problems from local files; every defect is a :class:`DataError`, none skipped.

Formats: JSON Lines (``.jsonl``), JSON (``.json``: an array of objects, or an object holding one
under ``data``/``problems``/``rows``), Parquet (``.parquet``) and folders written by
``datasets.Dataset.save_to_disk`` (``DatasetDict`` folders need ``split=``).

Layouts, recognised per record:

* MATH: ``problem``, ``solution``, ``level: "Level 4"``, ``type``; the answer is the last
  ``\\boxed{}`` of the solution when there is no ``answer`` field.
* MATH-500: ``problem``, ``answer``, ``level`` as an int, ``subject``, ``unique_id``.
* GSM8K: ``question``, ``answer`` ending in ``#### 42`` (the answer is what follows ``####``, the
  solution what precedes it).

Errors name the file, ``line N`` (the line in a JSON Lines or JSON file, the 1-based row in
Parquet and ``datasets`` folders) and the field: invalid JSON, no problem text, no answer anywhere,
a level outside 1-5, a duplicate id, an empty file. ``"Level ?"`` (a few MATH train problems) is
read as an unknown level (``None``), not an error.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lensrl.data.problem import DataError, Problem
from lensrl.verify.extract import last_boxed

_PROBLEM_FIELDS = ("problem", "question")
_ID_FIELDS = ("unique_id", "id")
_SUBJECT_FIELDS = ("subject", "type")
_JSON_LIST_KEYS = ("data", "problems", "rows")
_LEVEL_RE = re.compile(r"(?:level\s*)?(\d+|\?)", re.IGNORECASE)


def load_problems(path: str | os.PathLike[str], *, split: str | None = None) -> list[Problem]:
    """Read every record of ``path`` into a :class:`Problem` (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        rows: Iterator[tuple[int, Any]] = _dataset_rows(p, split)
    elif p.suffix == ".jsonl":
        rows = _jsonl_rows(p)
    elif p.suffix == ".json":
        rows = _json_rows(p)
    elif p.suffix == ".parquet":
        rows = _parquet_rows(p)
    else:
        raise DataError(f"{p}: unsupported file type {p.suffix!r} (use .jsonl, .json, .parquet)")
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        problem = _to_problem(row, p, line)
        if problem.id in seen:
            raise DataError(
                f"{p}: line {line}: field 'id': {problem.id!r} repeats line {seen[problem.id]}"
            )
        seen[problem.id] = line
        problems.append(problem)
    if not problems:
        raise DataError(f"{p}: empty file (no problems)")
    return problems


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                yield line, json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {line}: invalid JSON: {e.msg}") from None


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    if isinstance(data, dict):
        key = next((k for k in _JSON_LIST_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise DataError(f"{path}: line 1: expected a JSON array of problem objects")
        data = data[key]
    if not isinstance(data, list):
        raise DataError(f"{path}: line 1: expected a JSON array of problem objects")
    yield from zip(_element_lines(text, len(data)), data)


def _element_lines(text: str, n: int) -> list[int]:
    """The line on which each element of the JSON array in ``text`` starts (1-based).

    Falls back to 1, 2, ... when the array is not the top-level value (wrapped in an object).
    """
    stripped = text.lstrip()
    if not stripped.startswith("["):
        return list(range(1, n + 1))
    decoder = json.JSONDecoder()
    pos, line, lines = text.index("[") + 1, 1 + text.count("\n", 0, text.index("[")), []
    for _ in range(n):
        start = pos
        while text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", start, pos)
        lines.append(line)
        _, end = decoder.raw_decode(text, pos)
        line += text.count("\n", pos, end)
        pos = end
    return lines


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    yield from enumerate(table.to_pylist(), start=1)


def _dataset_rows(path: Path, split: str | None) -> Iterator[tuple[int, Any]]:
    if not ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        raise DataError(f"{path}: not a file, nor a folder written by datasets' save_to_disk")
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        names = sorted(loaded)
        if split is None and len(names) == 1:
            split = names[0]
        if split not in loaded:
            raise DataError(f"{path}: choose a split with split=..., one of {names}")
        loaded = loaded[split]
    yield from enumerate(loaded, start=1)


def _to_problem(row: Any, path: Path, line: int) -> Problem:
    where = f"{path}: line {line}"
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    problem_field = next((k for k in _PROBLEM_FIELDS if row.get(k) is not None), None)
    if problem_field is None:
        raise DataError(f"{where}: field 'problem': missing (also looked for 'question')")
    problem = _text(row, problem_field, where)
    if not problem.strip():
        raise DataError(f"{where}: field '{problem_field}': empty")
    solution = _optional_text(row, "solution", where)
    answer = _optional_text(row, "answer", where, numbers=True)
    if answer is not None and "####" in answer:  # GSM8K: reasoning, then "#### 42"
        reasoning, _, answer = answer.rpartition("####")
        solution = solution if solution is not None else reasoning.strip() or None
    answer = answer.strip() if answer is not None else None
    if not answer and solution is not None:
        answer = last_boxed(solution).answer
    if not answer:
        raise DataError(
            f"{where}: field 'answer': missing or empty, and no \\boxed{{}} answer in 'solution'"
        )
    id_field = next((k for k in _ID_FIELDS if row.get(k) is not None), None)
    pid = str(row[id_field]) if id_field else f"{path.stem}:{line}"
    subject_field = next((k for k in _SUBJECT_FIELDS if row.get(k) is not None), None)
    subject = _optional_text(row, subject_field, where) if subject_field else None
    return Problem(pid, problem, answer, _level(row.get("level"), where), subject, solution)


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{key}': expected a string, got {type(value).__name__}")
    return value


def _optional_text(
    row: dict[str, Any], key: str, where: str, *, numbers: bool = False
) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(row, key, where)


def _level(value: Any, where: str) -> int | None:
    """``4``, ``"4"``, ``"Level 4"`` -> 4; ``None`` / ``"Level ?"`` -> None; else DataError."""
    if value is None:
        return None
    level: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        level = value
    elif isinstance(value, float) and value.is_integer():
        level = int(value)
    elif isinstance(value, str):
        m = _LEVEL_RE.fullmatch(value.strip())
        if m is not None and m.group(1) == "?":
            return None
        level = int(m.group(1)) if m is not None else None
    if level is None or not 1 <= level <= 5:
        raise DataError(f"{where}: field 'level': expected 1-5 or 'Level N', got {value!r}")
    return level
