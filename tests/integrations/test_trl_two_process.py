"""Two processes (torch DDP over gloo on CPU) give the same advantages and update as one.

``accelerate launch --cpu`` starts a single process in accelerate 1.15 (its simple launcher),
so the two processes come from ``accelerate launch --multi_gpu --num_processes 2`` with TRL's
``use_cpu=True``: torchrun starts them and accelerate picks the gloo backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "trl_two_process_run.py"


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow  # 25 s on an idle 2-core machine, 45 s under load: over the default budget
def test_two_processes_match_one(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRL_EXPERIMENTAL_SILENCE": "1",
        "MASTER_PORT": str(29500 + os.getpid() % 1000),
    }
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", env["MASTER_PORT"]]
    _run([*launch, str(SCRIPT), "--out", str(tmp_path / "two"), "--per-device", "6"], env)
    sys.path.insert(0, str(HERE))
    from trl_two_process_run import run  # in-process: saves a second start-up of TRL

    run(tmp_path / "one", per_device=12)

    one = torch.load(tmp_path / "one" / "rank0.pt")
    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt") for r in (0, 1)]
    assert one["world"] == 1 and [r["world"] for r in ranks] == [2, 2]
    assert len(one["global"]) == 2  # two steps, each with its own generation
    for step in range(2):
        for rank in ranks:  # every rank holds the whole batch's advantages
            torch.testing.assert_close(rank["global"][step], one["global"][step])
        split = torch.cat([ranks[0]["local"][step], ranks[1]["local"][step]])
        torch.testing.assert_close(split, one["local"][step])  # each rank got its own slice
        assert ranks[0]["local"][step].numel() == 6
    # the first step had an all-wrong group with LENS advantages, and the model moved
    assert one["metrics"][0]["groups/frac_negative"] > 0
    assert one["metrics"][0]["lens/adv_share_negative"] > 0
    assert (one["params"] - one["initial"]).abs().max() > 1e-3
    for rank in ranks:
        torch.testing.assert_close(rank["params"], one["params"], rtol=1e-5, atol=1e-6)
        for logged, reference in zip(rank["metrics"], one["metrics"], strict=True):
            lens = {k: v for k, v in reference.items() if k.startswith(("lens/", "groups/"))}
            assert {k: logged[k] for k in lens} == pytest.approx(lens, nan_ok=True)
