#!/usr/bin/env bash
# GPU checks for lensrl, run on the lent device machine (no network: wheels carried in .whl).
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $OUT/gpu.txt
python3 - <<'PY' 2>&1 | tee -a $OUT/gpu.txt
import torch, transformers
from lensrl.train.precision import select_dtype
from lensrl.core import compute_advantages, group_diagnostics
print("torch", torch.__version__, "transformers", transformers.__version__)
print("dtype auto on cuda:", select_dtype("auto", torch.device("cuda")))
g = torch.Generator().manual_seed(0)
c = (torch.rand(8192, generator=g) < 0.3).float(); lp = -torch.rand(8192, generator=g) * 3
a_cpu = compute_advantages(c, lp, group_size=16)
a_gpu = compute_advantages(c.cuda(), lp.cuda(), group_size=16)
print("core cpu==gpu max diff:", (a_cpu - a_gpu.cpu()).abs().max().item(), a_gpu.device)
import time
for est in ("grpo", "lens"):
    cc, ll = c.repeat(8).cuda(), lp.repeat(8).cuda()
    compute_advantages(cc, ll, group_size=16, estimator=est); torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20): compute_advantages(cc, ll, group_size=16, estimator=est)
    torch.cuda.synchronize(); print(f"advantage_ms {est} N=65536 cuda: {(time.perf_counter()-t)/20*1e3:.2f}")
PY
for est in grpo lens; do
  python3 -m lensrl train --preset smoke --set model.device=cuda --set algo.estimator=$est \
    --run-dir /tmp/gpu_$est --steps 8 --checkpoint-every 4 --no-progress 2>&1 | tail -3 | tee -a $OUT/gpu.txt
  cp /tmp/gpu_$est/metrics.jsonl $OUT/metrics_$est.jsonl
done
# resume on GPU: kill-free variant (stop at 4 via --steps, then resume to 8)
python3 -m lensrl train --preset smoke --set model.device=cuda --run-dir /tmp/gpu_r --steps 4 --checkpoint-every 4 --no-progress >/dev/null 2>&1
python3 -m lensrl train --preset smoke --set model.device=cuda --run-dir /tmp/gpu_r --steps 8 --checkpoint-every 4 --no-progress --resume 2>&1 | tail -2 | tee -a $OUT/gpu.txt
python3 - <<'PY' 2>&1 | tee -a $OUT/gpu.txt
import json
def rows(p): return [{k: v for k, v in json.loads(l).items() if not k.startswith("time/")} for l in open(p)]
a, b = rows("/tmp/gpu_lens/metrics.jsonl"), rows("/tmp/gpu_r/metrics.jsonl")
print("gpu resume identical:", a == b, len(a), len(b))
if a != b:
    for x, y in zip(a, b):
        if x != y: print("first diff step", x["step"], {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}); break
PY
