"""A LENS step through verl's own actor worker: Ray, a RayWorkerGroup, FSDP2 over gloo, TransferQueue.

What runs is verl 0.9.1's code, on CPU: a one-worker ``RayWorkerGroup`` of
``ActorRolloutRefWorker`` (role ``actor``: the FSDP2 engine and its optimizer, no rollout), fed
through a real TransferQueue, driven by the v1 trainer's own step methods
(``_compute_old_log_prob``, ``_compute_advantage`` of ``lens_sync``, ``_update_actor``) on a
trainer object that skips ``__init__`` (which would build the dataloader, the rollout servers
and the reward loop). Left out, and why: rollout (verl registers vLLM, SGLang and TensorRT-LLM
servers only, none runs on CPU), so the test samples with HF ``generate`` on the worker's
current weights; the reward loop's Ray workers, so the test calls ``compute_score`` itself, as
verl's naive reward manager would (tests_verl/test_reward.py runs that manager); ``fit()``'s
dataloader, checkpoints and loggers.

The device comes from tests_verl/verl_cpu_platform.py (see its docstring and docs/integrations.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

P, G, T = 4, 4, 6  # prompts, samples per prompt, new tokens per sample
ALPHABET = "0123456789+= "
NEVER_PRODUCED = "-7"  # the alphabet has no '-': every answer is wrong
HERE = Path(__file__).parent
ENV = {
    "VERL_PLATFORM": "lensrl_cpu_test",
    # the platform first: verl reads it on first use of get_platform, after these imports
    "VERL_USE_EXTERNAL_MODULES": "verl_cpu_platform,lensrl.integrations.verl",
    # verl registers its FSDP engines for cuda and npu only; this is verl's own switch to pick
    # the cuda-registered class, which is plain torch FSDP2 and runs on any device
    "VERL_ENGINE_DEVICE": "cuda",
    "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
}


def verl_config(model_dir: Path) -> Any:
    """verl's own ppo_trainer config with the overrides that build the actor on CPU."""
    import verl.trainer.main_ppo as main_ppo
    from hydra import compose, initialize_config_dir

    overrides = [
        f"actor_rollout_ref.model.path={model_dir}",
        "actor_rollout_ref.model.use_remove_padding=False",  # padding removal needs flash-attn
        "actor_rollout_ref.model.enable_gradient_checkpointing=False",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.actor.fsdp_config.strategy=fsdp2",
        "actor_rollout_ref.actor.use_torch_compile=False",
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile=False",
        # fp32 end to end: the default bf16 MixedPrecisionPolicy would round the weights
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,"
        "reduce_dtype:fp32,buffer_dtype:fp32}",
        "actor_rollout_ref.actor.optim.lr=1e-2",
        # AdamW's decoupled decay moves weights even at zero gradient; off, so that
        # "GRPO leaves an all-wrong batch's weights unchanged" is a test of the advantages
        "actor_rollout_ref.actor.optim.weight_decay=0.0",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={P}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={P * G}",
        "actor_rollout_ref.actor.use_kl_loss=False",
        "actor_rollout_ref.actor.entropy_coeff=0",
        f"actor_rollout_ref.rollout.n={G}",
        "actor_rollout_ref.rollout.name=vllm",  # never built: role "actor" has no rollout
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={P * G}",
        "actor_rollout_ref.rollout.calculate_log_probs=False",
        "algorithm.use_kl_in_reward=False",
        "+algorithm.lens_alpha=0.25",
        "trainer.device=cpu",
        "trainer.n_gpus_per_node=1",
        "transfer_queue.enable=True",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "transfer_queue.backend.SimpleStorage.total_storage_size=1024",
    ]
    config_dir = str(Path(main_ppo.__file__).parent / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lensrl.policy import build_tiny

    model, tokenizer = build_tiny("nano", ALPHABET, seed=0)
    out = tmp_path_factory.mktemp("nano_llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def cluster(model_dir: Path) -> Any:
    """Ray plus a one-unit TransferQueue.

    Ray's resources are logical: 3 CPUs because TransferQueue's controller and its storage unit
    reserve one each and verl's placement group one per worker; 1 GPU because verl's pool asks
    for one per worker (the platform names it; nothing uses it).
    """
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    import ray
    import transfer_queue as tq

    config = verl_config(model_dir)
    ray.init(
        num_cpus=3,
        num_gpus=1,
        include_dashboard=False,
        runtime_env={"env_vars": ENV},
        log_to_driver=True,
    )
    try:
        tq.init(config.transfer_queue)
        yield config
    finally:
        try:
            tq.close()
        finally:
            ray.shutdown()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def trainer(cluster: Any) -> Any:
    """The lens_sync trainer around one actor worker group; only its step methods are used."""
    import ray
    from verl.single_controller.ray import RayClassWithInitArgs, RayResourcePool, RayWorkerGroup
    from verl.workers.engine_workers import ActorRolloutRefWorker

    from lensrl.integrations.verl_trainer import LensPPOTrainerSync

    pool = RayResourcePool(process_on_nodes=[1], use_gpu=True, max_colocate_count=1)
    worker_cls = RayClassWithInitArgs(
        cls=ray.remote(ActorRolloutRefWorker), config=cluster.actor_rollout_ref, role="actor"
    )
    group = RayWorkerGroup(resource_pool=pool, ray_cls_with_init=worker_cls, device_name="cpu")
    group.init_model()
    trainer = object.__new__(LensPPOTrainerSync)  # no dataloader, rollout servers, reward loop
    trainer.config = cluster.copy()
    trainer.actor_rollout_wg = group
    yield trainer
    for worker in group.workers:
        ray.kill(worker)


def sample(
    model_dir: Path, state: dict[str, torch.Tensor], gold: list[str] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """P prompts × G samples from HF ``generate`` on the actor's current weights, scored."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lensrl.integrations.verl_reward import compute_score

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.load_state_dict(state)  # on-policy: the weights the worker holds now
    prompts = [f"{10 + 7 * i}+{3 * i}=" for i in range(P)]
    torch.manual_seed(0)
    rows, texts = [], []
    for i, prompt in enumerate(prompts):
        ids = tokenizer(prompt, return_tensors="pt").input_ids  # (1, Lp)
        out = model.generate(
            ids.repeat(G, 1),
            do_sample=True,
            max_new_tokens=T,
            min_new_tokens=T,  # equal lengths: no EOS, so no padding inside the response
            pad_token_id=tokenizer.pad_token_id,
        )  # (G, Lp + T)
        for k in range(G):
            response = out[k, ids.shape[1] :]
            texts.append(tokenizer.decode(response, skip_special_tokens=True))
            rows.append((i, k, ids[0], response))
    # gold: by default the answer of each group's first sample, so that groups tend to be mixed
    # (LENS's Eq. 8 branch); the caller fixes it for an always-wrong reward
    if gold is None:
        gold = [
            compute_score("math", texts[i * G], "0", strict=False)["pred"] or "0" for i in range(P)
        ]
    fields, scores = [], []
    for (i, _k, prompt_ids, response), text in zip(rows, texts):
        score = compute_score("math", text, gold[i], strict=False)
        scores.append(score)
        input_ids = torch.cat([prompt_ids, response])
        rm = torch.zeros(T)
        rm[-1] = score["score"]  # verl puts the sequence reward on the last response token
        fields.append(
            {
                "uid": f"p{i}",
                "prompts": prompt_ids,
                "responses": response,
                "input_ids": input_ids,
                "attention_mask": torch.ones_like(input_ids),
                "position_ids": torch.arange(len(input_ids)),
                "response_mask": torch.ones(T, dtype=torch.int64),
                "loss_mask": torch.ones(T, dtype=torch.int64),
                "rm_scores": rm,
                "extra_fields": {"reward_extra_info": score},
            }
        )
    return {"keys": [f"p{i}_{k}_0" for i, k, _, _ in rows], "fields": fields}, scores


def put(batch: dict[str, Any]) -> Any:
    """Into TransferQueue as verl's agent loop writes trajectories; the KVBatchMeta back."""
    import transfer_queue as tq
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    tags = [{"status": "success", "seq_len": len(f["input_ids"])} for f in batch["fields"]]
    meta = tq.kv_batch_put(
        keys=batch["keys"],
        fields=list_of_dict_to_tensordict(batch["fields"]),
        tags=tags,
        partition_id="train",
    )
    meta.extra_info["temperature"] = 1.0  # as the trainer's _step_once sets it
    return meta


def weights(trainer: Any) -> dict[str, torch.Tensor]:
    """The actor's full parameters, gathered from its FSDP2 shards on the worker."""
    import ray

    worker = trainer.actor_rollout_wg.workers[0]
    return ray.get(worker.__ray_call__.remote(_full_state))


def _full_state(self: Any) -> dict[str, torch.Tensor]:
    module = self.actor.engine.module
    return {
        k: v.full_tensor().detach().clone() if hasattr(v, "full_tensor") else v.detach().clone()
        for k, v in module.state_dict().items()
    }


def _clear_optimizer(self: Any) -> None:
    self.actor.engine.optimizer.state.clear()


def step(trainer: Any, model_dir: Path, estimator: str, gold: list[str] | None) -> dict[str, Any]:
    """One verl step, as the v1 trainer's _step_once runs it after the reward."""
    import ray
    import transfer_queue as tq

    trainer.config.algorithm.adv_estimator = estimator
    # AdamW's moments from an earlier step would move weights even at zero gradient: each step
    # starts from a fresh optimizer state, so what moves the weights is this batch alone
    ray.get(trainer.actor_rollout_wg.workers[0].__ray_call__.remote(_clear_optimizer))
    before = weights(trainer)
    data, scores = sample(model_dir, before, gold)
    batch = put(data)
    metrics: dict[str, Any] = {}
    try:
        batch = trainer._compute_old_log_prob(batch, metrics=metrics)
        batch = trainer._compute_advantage(batch, metrics=metrics)
        got = tq.kv_batch_get(
            keys=batch.keys, partition_id="train", select_fields=["advantages", "old_log_probs"]
        )
        batch = trainer._update_actor(batch, metrics=metrics)
    finally:
        tq.kv_clear(keys=batch.keys, partition_id="train")
    return {
        "metrics": metrics,
        "before": before,
        "after": weights(trainer),
        "scores": scores,
        "advantages": got["advantages"].to_padded_tensor(0.0),  # (N, T)
        "old_log_probs": got["old_log_probs"].to_padded_tensor(0.0),  # (N, T)
    }


def moved(run: dict[str, Any]) -> float:
    return max(float((run["after"][k] - run["before"][k]).abs().max()) for k in run["before"])


def core_advantages(run: dict[str, Any], estimator: str) -> torch.Tensor:
    """``(N,)`` lensrl.core on the step's own verdicts and the worker's old log-probs."""
    from lensrl.core import compute_advantages, sequence_mean_logprob

    correct = torch.tensor(
        [s["score"] if s["judged"] else float("nan") for s in run["scores"]], dtype=torch.float64
    )
    seq_lp = sequence_mean_logprob(run["old_log_probs"].double(), torch.ones(P * G, T))
    return compute_advantages(correct, seq_lp, group_size=G, estimator=estimator).float()


def test_lens_step_through_verls_actor_worker(trainer: Any, model_dir: Path) -> None:
    run = step(trainer, model_dir, "lens", gold=None)
    m = run["metrics"]
    assert moved(run) > 0, "update_actor left every weight unchanged"
    for key in ("actor/pg_loss", "actor/pg_clipfrac"):
        assert key in m and np.isfinite(m[key]), (key, m.get(key))
    assert {"lens/D_mean", "groups/frac_mixed"} <= m.keys()  # lens_sync's metrics, from the bridge
    assert bool((run["old_log_probs"] < 0).all()), "old_log_probs did not come from the worker"
    # what verl's update consumed is core's LENS on the worker's old log-probs, row for row
    expected = core_advantages(run, "lens")
    torch.testing.assert_close(run["advantages"], expected[:, None].expand(P * G, T))
    assert expected.abs().sum() > 0


def test_all_wrong_batch_grpo_stays_lens_moves(trainer: Any, model_dir: Path) -> None:
    """LENS's point (LENS.md §2): an all-wrong group still teaches; GRPO's advantage there is 0."""
    grpo = step(trainer, model_dir, "lensrl_grpo", gold=[NEVER_PRODUCED] * P)
    lens = step(trainer, model_dir, "lens", gold=[NEVER_PRODUCED] * P)
    assert all(s["score"] == 0.0 and s["judged"] for s in grpo["scores"] + lens["scores"])
    assert moved(grpo) == 0.0, "GRPO moved weights on an all-wrong batch"
    assert bool((grpo["advantages"] == 0).all())
    assert moved(lens) > 0.0, "LENS left weights unchanged on an all-wrong batch"
    expected = core_advantages(lens, "lens")  # calibrated negatives, de-meaned per group
    torch.testing.assert_close(lens["advantages"], expected[:, None].expand(P * G, T))
    assert bool((expected != 0).any())
    assert np.isfinite(lens["metrics"]["actor/pg_loss"])
    assert np.isfinite(lens["metrics"]["actor/pg_clipfrac"])
