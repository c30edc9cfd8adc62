"""load_problems: MATH, MATH-500 and GSM8K layouts in JSONL, JSON, Parquet and datasets folders;
every defect is a DataError naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lensrl.data import DataError, Problem, load_problems

MATH = [
    {
        "problem": "What is $1+1$?",
        "solution": "We have $1+1=\\boxed{2}$.",
        "level": "Level 1",
        "type": "Prealgebra",
    },
    {
        "problem": "Simplify $\\sqrt{18}$.",
        "solution": "$\\sqrt{18} = \\boxed{3\\sqrt{2}}$.",
        "level": "Level 4",
        "type": "Algebra",
    },
    {
        "problem": "Where is the point?",
        "solution": "It is at $\\boxed{(2,3)}$.",
        "level": "Level ?",
        "type": "Geometry",
    },
]
MATH500 = [
    {
        "problem": "Convert the point $(0,3)$ to polar coordinates.",
        "solution": "... $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$",
        "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
        "subject": "Precalculus",
        "level": 2,
        "unique_id": "test/precalculus/807.json",
    },
    {
        "problem": "Find $x$.",
        "solution": "So $x = \\boxed{5}$.",
        "answer": "5",
        "subject": "Algebra",
        "level": 5,
        "unique_id": "test/algebra/1.json",
    },
]
GSM8K = [
    {
        "question": "Natalia sold clips to 48 friends in April, and half as many in May. How many?",
        "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\n48+24 = <<48+24=72>>72\n#### 72",
    },
    {
        "question": "Weng earns $12 an hour. How much for 50 minutes?",
        "answer": "12/60*50=10\n#### 10",
    },
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_math_layout(tmp_path: Path) -> None:
    got = load_problems(write_jsonl(tmp_path / "math.jsonl", MATH))
    assert got[0] == Problem(
        id="math:1",
        problem="What is $1+1$?",
        answer="2",
        level=1,
        subject="Prealgebra",
        solution="We have $1+1=\\boxed{2}$.",
    )
    assert got[1].answer == "3\\sqrt{2}" and got[1].level == 4
    assert got[2].level is None, "'Level ?' is an unknown level"


def test_math500_layout(tmp_path: Path) -> None:
    path = tmp_path / "math500.json"
    path.write_text(json.dumps(MATH500, indent=2))
    got = load_problems(path)
    assert [p.id for p in got] == ["test/precalculus/807.json", "test/algebra/1.json"]
    assert got[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert (got[0].level, got[0].subject) == (2, "Precalculus")


def test_gsm8k_layout(tmp_path: Path) -> None:
    got = load_problems(write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K))
    assert [p.answer for p in got] == ["72", "10"]
    assert got[0].problem.startswith("Natalia")
    assert got[0].solution is not None and got[0].solution.endswith("72")
    assert got[0].level is None and got[0].subject is None


def test_json_wrapped_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"id": 7, "problem": "p", "answer": 42, "level": "3"}]}))
    (p,) = load_problems(path)
    assert (p.id, p.answer, p.level) == ("7", "42", 3)


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "math500.parquet"
    pq.write_table(pa.Table.from_pylist(MATH500), path)
    assert load_problems(path) == load_problems(write_jsonl(tmp_path / "m.jsonl", MATH500))


def test_datasets_folders(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list(MATH500).save_to_disk(str(tmp_path / "one"))
    assert [p.answer for p in load_problems(tmp_path / "one")] == [
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "5",
    ]
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(GSM8K), "test": datasets.Dataset.from_list(MATH500)}
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    assert [p.answer for p in load_problems(tmp_path / "dict", split="train")] == ["72", "10"]
    with pytest.raises(DataError, match=r"choose a split.*\['test', 'train'\]"):
        load_problems(tmp_path / "dict")


def _bad(tmp_path: Path, rows: list[Any]) -> str:
    with pytest.raises(DataError) as err:
        load_problems(write_jsonl(tmp_path / "bad.jsonl", rows))
    return str(err.value)


@pytest.mark.parametrize(
    ("row", "field", "needle"),
    [
        ({"answer": "3"}, "problem", "missing"),
        ({"problem": "", "answer": "3"}, "problem", "empty"),
        ({"problem": 5, "answer": "3"}, "problem", "expected a string"),
        ({"problem": "p"}, "answer", "no \\boxed{} answer"),
        ({"problem": "p", "answer": ""}, "answer", "missing or empty"),
        ({"problem": "p", "solution": "no box here"}, "answer", "no \\boxed{} answer"),
        ({"problem": "p", "answer": "3", "level": "Level 7"}, "level", "'Level 7'"),
        ({"problem": "p", "answer": "3", "level": 0}, "level", "expected 1-5"),
        ({"problem": "p", "answer": "3", "level": 6}, "level", "got 6"),
        ({"problem": "p", "answer": "3", "level": "hard"}, "level", "'hard'"),
        ({"problem": "p", "answer": "3", "level": True}, "level", "True"),
        ({"problem": "p", "answer": ["3"]}, "answer", "expected a string"),
    ],
)
def test_field_errors_name_file_line_field(
    tmp_path: Path, row: dict[str, Any], field: str, needle: str
) -> None:
    msg = _bad(tmp_path, [{"problem": "fine", "answer": "1"}, row])
    assert "bad.jsonl" in msg and "line 2" in msg and f"field '{field}'" in msg, msg
    assert needle in msg, msg


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"problem": "a", "answer": "1"}\n\n{"problem": "b", "answer": \n')
    with pytest.raises(DataError, match=r"broken\.jsonl: line 3: invalid JSON"):
        load_problems(path)


def test_invalid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"problem": "a", "answer": "1"},\n  {"problem": "b",, }\n]')
    with pytest.raises(DataError, match=r"broken\.json: line 3: invalid JSON"):
        load_problems(path)


def test_json_array_errors_give_the_element_line(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"problem": "a", "answer": "1"},\n\n  {"problem": "b"}\n]\n')
    with pytest.raises(DataError, match=r"arr\.json: line 4: field 'answer'"):
        load_problems(path)


def test_parquet_errors_give_the_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"problem": "a", "level": 2}, {"problem": "b", "level": 9}]), path
    )
    with pytest.raises(DataError, match=r"bad\.parquet: line 1: field 'answer'"):
        load_problems(path)


@pytest.mark.parametrize(("name", "text"), [("e.jsonl", ""), ("e.jsonl", "\n\n"), ("e.json", "[]")])
def test_empty_files(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match="empty file"):
        load_problems(tmp_path / name)


def test_other_errors(tmp_path: Path) -> None:
    msg = _bad(
        tmp_path,
        [{"id": "a", "problem": "p", "answer": "1"}, {"id": "a", "problem": "q", "answer": "2"}],
    )
    assert "line 2: field 'id'" in msg and "repeats line 1" in msg
    assert "expected an object" in _bad(tmp_path, [[1, 2]])
    (tmp_path / "x.csv").write_text("problem,answer\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_problems(tmp_path / "x.csv")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet"):
        load_problems(tmp_path / "x.parquet")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="save_to_disk"):
        load_problems(tmp_path / "folder")
    with pytest.raises(FileNotFoundError):
        load_problems(tmp_path / "missing.jsonl")
    assert issubclass(DataError, ValueError)


def test_data_modules_import_no_torch() -> None:
    """lensrl.data stays importable without torch; ``datasets`` is imported lazily, by the loader."""
    import ast

    import lensrl.data

    for path in Path(lensrl.data.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        top = {m.split(".")[0] for m in mods}
        assert not top & {"torch", "transformers"}, path.name
        assert "datasets" not in top or path.name == "loading.py", path.name
