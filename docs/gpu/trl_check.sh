#!/usr/bin/env bash
# LensGRPOTrainer vs GRPOTrainer on SmolLM2-135M(-Instruct's architecture) on one lent GPU.
# PREPARED, NOT YET RUN: no GPU was lent to the task that wrote it (docs/gpu.md).
#
# Two halves, because the GPU machine has no network and takes at most 64 MiB per call:
#   here, once:        bash docs/gpu/trl_check.sh prepare
#       writes docs/gpu/carry/ (git-ignored by its own .gitignore): the wheels the machine's image
#       lacks (trl, datasets, math-verify and their missing dependencies, ~15 MB) and
#       docs/gpu/carry/smollm2_arch (SmolLM2-135M-Instruct's config.json and tokenizer, ~3 MB;
#       its 98 MB GGUF does not fit, so the run uses random weights: see trl_smollm2.py).
#   device run:        run(command="bash docs/gpu/trl_check.sh run", carry=["docs/gpu/carry"],
#                          timeout_s=540)
#       prints and writes $OUT/trl_smollm2.json (steps/s, peak memory, LENS overhead).
set -uo pipefail
MODE=${1:-run}
CARRY=docs/gpu/carry

if [ "$MODE" = prepare ]; then
  mkdir -p "$CARRY/whl"
  # The image has torch 2.11, transformers 5.17, accelerate, pyarrow, xxhash, pandas, requests
  # (docs: /work/.library/device/KINDS.md); these are what lensrl's TRL path adds.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$CARRY/whl" \
    trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 math-verify==0.9.0 \
    latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 || exit 1
  .venv/bin/python - "$CARRY/smollm2_arch" <<'PY' || exit 1
import sys
from lensrl.policy import load_smollm2
model, tokenizer = load_smollm2()
model.config.save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
print("saved", sys.argv[1])
PY
  du -sh "$CARRY"
  exit 0
fi

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
  "$CARRY"/whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 docs/gpu/trl_smollm2.py --steps 20 --model-dir "$CARRY/smollm2_arch" 2>&1 \
  | tee "$OUT/trl_smollm2.log"
