#!/usr/bin/env bash
# LENS on MATH with verl 0.9.1: the paper's settings (LENS.md §4 and §8 fact 14) as verl options.
# UNTESTED ON GPU: written against verl 0.9.1's config schema; only the adapter's CPU tests ran.
#
#   python recipes/verl/prepare_math.py --train MATH/train --test MATH/test --out ~/data/lens_math
#   MODEL=Qwen/Qwen2.5-3B bash recipes/verl/lens_math.sh                     # one node, 8 GPUs
#   MODEL=meta-llama/Llama-3.1-8B-Instruct NNODES=4 bash recipes/verl/lens_math.sh   # see docs
#
# Environment: MODEL, DATA_DIR, NNODES, GPUS_PER_NODE, LR (default 1e-6; 3e-7 for Llama-3.1-8B),
# ADV_ESTIMATOR (lens | lens_mixed_only | lens_negative_only | lensrl_grpo ...), ALPHA, STEPS,
# ROLLOUT_TP. Extra arguments are passed to verl as Hydra overrides.
set -euo pipefail

MODEL=${MODEL:-Qwen/Qwen2.5-3B}
case "$MODEL" in
  *Llama-3.1-8B*) DEFAULT_LR=3e-7 ;;
  *) DEFAULT_LR=1e-6 ;;
esac
LR=${LR:-$DEFAULT_LR}
DATA_DIR=${DATA_DIR:-$HOME/data/lens_math}
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
ADV_ESTIMATOR=${ADV_ESTIMATOR:-lens}
ALPHA=${ALPHA:-0.25}
STEPS=${STEPS:-1600}
ROLLOUT_TP=${ROLLOUT_TP:-1}
EXPERIMENT=${EXPERIMENT:-${ADV_ESTIMATOR}-$(basename "$MODEL")}

# Every process that imports verl (driver and Ray workers) loads the adapter. On a multi-node
# cluster export this before `ray start` on every node, or the workers will not have it.
export VERL_USE_EXTERNAL_MODULES=lensrl.integrations.verl
REWARD_FILE=$(python -c 'import lensrl.integrations.verl_reward as m; print(m.__file__)')

# Batch sizes count prompts: 128 prompts x 16 samples per rollout, 4 updates of 32 prompts
# (512 trajectories) each = the paper's "train batch 128 = 4 x 32".
python -m verl.trainer.main_ppo \
  algorithm.adv_estimator="$ADV_ESTIMATOR" \
  +algorithm.lens_alpha="$ALPHA" \
  algorithm.use_kl_in_reward=False \
  trainer.use_v1=True \
  trainer.v1.trainer_mode=lens_sync \
  data.train_files="$DATA_DIR/train.parquet" \
  data.val_files="$DATA_DIR/test.parquet" \
  data.train_batch_size=128 \
  data.max_prompt_length=1024 \
  data.max_response_length=4096 \
  data.filter_overlong_prompts=True \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.model.enable_gradient_checkpointing=True \
  actor_rollout_ref.actor.optim.lr="$LR" \
  actor_rollout_ref.actor.ppo_mini_batch_size=32 \
  actor_rollout_ref.actor.ppo_epochs=1 \
  actor_rollout_ref.actor.clip_ratio_low=0.2 \
  actor_rollout_ref.actor.clip_ratio_high=0.2 \
  actor_rollout_ref.actor.use_kl_loss=False \
  actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.actor.use_dynamic_bsz=True \
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384 \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n=16 \
  actor_rollout_ref.rollout.temperature=1.0 \
  actor_rollout_ref.rollout.top_p=1.0 \
  actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP" \
  actor_rollout_ref.rollout.val_kwargs.n=16 \
  actor_rollout_ref.rollout.val_kwargs.temperature=1.0 \
  actor_rollout_ref.rollout.val_kwargs.top_p=1.0 \
  actor_rollout_ref.rollout.val_kwargs.do_sample=True \
  reward.custom_reward_function.path="$REWARD_FILE" \
  reward.custom_reward_function.name=compute_score \
  trainer.nnodes="$NNODES" \
  trainer.n_gpus_per_node="$GPUS_PER_NODE" \
  trainer.total_training_steps="$STEPS" \
  trainer.test_freq=50 \
  trainer.save_freq=100 \
  trainer.project_name=lensrl \
  trainer.experiment_name="$EXPERIMENT" \
  trainer.logger='["console","tensorboard"]' \
  "$@"
