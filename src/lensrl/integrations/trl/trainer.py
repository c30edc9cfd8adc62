"""``LensGRPOTrainer``: TRL's ``GRPOTrainer`` with LENS advantages from lensrl.core (see the
package docstring for how TRL's options map onto lensrl.core)."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import torch
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.grpo_trainer import GRPOTrainer

from lensrl.core import (
    compute_advantages,
    group_diagnostics,
    sequence_mean_logprob,
)
from lensrl.integrations.trl.config import TRL_STD_EPS, LensGRPOConfig
from lensrl.integrations.trl.old_logprobs import SampledLogprobs

# Keys of TRL's generation output that the policy forward needs (multimodal models).
FORWARD_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)

class LensGRPOTrainer(GRPOTrainer):
    """[`GRPOTrainer`] whose advantages are LENS's (:func:`lensrl.core.compute_advantages`).

    What it overrides, and why (TRL has no advantage hook; checked in TRL 1.16.0):

    - ``_calculate_rewards``: calls TRL's, then stashes the returned ``(N_global, n_funcs)``
      rewards (already gathered across processes) on ``self``, because TRL does not return raw
      rewards from ``_generate_and_score_completions``.
    - ``_generate_and_score_completions``: calls TRL's, then
      1. takes π_old per-token log-probs: TRL's ``old_per_token_logps`` when it computed them
         (off-policy buffering, vLLM); else the policy's log-probs of the sampled tokens,
         recorded from the logits of ``generate``'s own forward calls
         (``_generate_single_turn``, :class:`SampledLogprobs`) where TRL runs ``generate``
         in this process (:meth:`_can_record_sampling`); otherwise one extra no-grad forward
         pass through ``_get_per_token_logps_and_entropies``. All three are
         taken at generation time, so the confidence is π_old's for every iteration of
         ``num_iterations`` and every buffered step. Under
         ``mask_truncated_completions`` TRL zeroed the mask *and the attention* of truncated
         completions; LENS still scores them (they stay in their group's statistics, as in
         TRL), so their confidence is taken over their real tokens with full attention;
      2. gathers the per-sequence mean log-prob (:func:`lensrl.core.sequence_mean_logprob`)
         so groups split across processes line up with the gathered rewards;
      3. calls :func:`lensrl.core.compute_advantages` on the correctness column and slices the
         result back to this process exactly as TRL does;
      4. rewrites the advantages TRL logged for its completions table, and appends
         :func:`lensrl.core.group_diagnostics` (``groups/*``, ``lens/*``,
         ``verify/frac_unjudged``) to the metrics on every process (same values everywhere).

    The loss is TRL's, unchanged: α is folded into the negative groups' advantages, which is
    exact because the clipped surrogate is positively homogeneous in A (docs/algorithm.md §6 fact 9).
    With ``beta > 0`` every row also gets TRL's KL term, negative groups included.
    """

    args: LensGRPOConfig

    def __init__(self, model: Any, reward_funcs: Any = None, args: Any = None, **kwargs: Any):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path or "model"
            args = LensGRPOConfig(f"{str(name).rstrip('/').split('/')[-1]}-LENS")
        if not isinstance(args, LensGRPOConfig):
            raise TypeError(
                f"LensGRPOTrainer needs a LensGRPOConfig, got {type(args).__name__}: "
                "LensGRPOConfig is a drop-in for GRPOConfig with the LENS options added"
            )
        super().__init__(model, reward_funcs, args, **kwargs)
        self._lens_correct_index = self._resolve_correctness(self.reward_func_names)
        self._lens_rewards_per_func: torch.Tensor | None = None
        self._lens_sampled_logps: torch.Tensor | None = None  # (B, steps) from generate

    def _resolve_correctness(self, names: Sequence[str]) -> int:
        wanted = self.args.lens_correctness_reward
        if wanted is None:
            if len(names) == 1:
                return 0
            if list(names).count("accuracy_reward") == 1:
                wanted = "accuracy_reward"
            else:
                raise ValueError(
                    f"LENS needs one correctness reward, but there are {len(names)} reward "
                    f"functions {list(names)}: set lens_correctness_reward to one of them"
                )
        if wanted not in names:
            raise ValueError(
                f"lens_correctness_reward={wanted!r} is not a reward function of this trainer; "
                f"the reward functions are {list(names)}"
            )
        others = [n for n in names if n != wanted]
        if others:
            warnings.warn(
                f"LENS advantages use only the correctness reward {wanted!r}; {others} are "
                "computed and logged but do not shape the advantage",
                stacklevel=3,
            )
        return list(names).index(wanted)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        rewards_per_func = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        self._lens_rewards_per_func = rewards_per_func  # (N_global, n_funcs), gathered
        return rewards_per_func

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,  # type: ignore[no-untyped-def]
                              has_tool_images=False):
        """TRL's, recording π_old's log-prob of every sampled token from ``generate``'s own
        forward calls (no extra forward pass)."""
        self._lens_sampled_logps = None
        if not self._can_record_sampling():
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                 num_generations, has_tool_images)
        record = SampledLogprobs(self.temperature)
        model = self.accelerator.unwrap_model(self.model_wrapped)
        forward = model.forward

        def recording_forward(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            record.step(kwargs["input_ids"], out.logits[:, -1])
            return out

        # generate's calls only; put back below (TRL may have set its own instance forward)
        own = model.__dict__.get("forward")
        model.forward = recording_forward
        try:
            result = super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                   num_generations, has_tool_images)
        finally:
            if own is None:
                del model.forward
            else:
                model.forward = own
        self._lens_sampled_logps = record.logps(result[0])
        return result

    def _can_record_sampling(self) -> bool:
        """True when TRL samples with ``model.generate`` on the unwrapped model in this
        process, in one turn of text: not vLLM or continuous batching, no tools, no images, no
        DeepSpeed or FSDP sharding (there ``generate`` runs on another object)."""
        return bool(
            not self.use_vllm
            and not self.use_transformers_continuous_batching
            and not self.tools
            and not self._is_vlm
            and not self.is_deepspeed_enabled
            and not self.is_fsdp_enabled
        )

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        return self._apply_lens(super()._generate_and_score_completions(inputs))

    def _apply_lens(self, out: dict[str, Any]) -> dict[str, Any]:
        """Steps 1–4 of the class docstring on TRL's generation output; returns ``out``."""
        assert self.model is not None and self._lens_rewards_per_func is not None
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        assert group_size is not None
        correct = self._lens_rewards_per_func[:, self._lens_correct_index]  # (N_global,)
        self._check_correctness(correct)
        seq_lp = self.accelerator.gather(self._local_mean_logprob(out, mode))  # (N_global,)
        args = self.args
        advantages = compute_advantages(
            correct,
            seq_lp,
            group_size=group_size,
            estimator=args.lens_estimator,
            alpha=args.lens_alpha,
            std_ddof=1,
            eps=TRL_STD_EPS,
            d_floor=args.lens_d_floor,
        )  # (N_global,)
        local = out["completion_ids"].size(0)
        start = self.accelerator.process_index * local
        out["advantages"] = advantages[start : start + local].to(out["advantages"].dtype)

        # TRL appended its own N_global advantages last: replace them with the ones used.
        logged = cast("deque[float]", self._logs["advantages"])
        for _ in range(min(len(logged), advantages.numel())):
            logged.pop()
        logged.extend(advantages.tolist())
        diagnostics = group_diagnostics(
            correct, seq_lp, advantages, group_size=group_size, d_floor=args.lens_d_floor
        )
        for key, value in diagnostics.items():
            self._metrics[mode][key].append(value)
        return out

    def _check_correctness(self, correct: torch.Tensor) -> None:
        judged = correct[~torch.isnan(correct)]
        if bool(((judged != 0) & (judged != 1)).any()):
            name = self.reward_func_names[self._lens_correct_index]
            bad = sorted({float(v) for v in judged[(judged != 0) & (judged != 1)][:5]})
            raise ValueError(
                f"LENS needs the correctness reward {name!r} to return 1.0, 0.0 or None; it "
                f"returned {bad}. Set lens_correctness_reward to a binary reward function."
            )

    def _local_mean_logprob(self, out: dict[str, Any], mode: str) -> torch.Tensor:
        """``(B,)`` log π̄ of this process's completions under π_old (docs/algorithm.md §6 fact 3)."""
        completion_ids, completion_mask = out["completion_ids"], out["completion_mask"]  # (B, T)
        attention = completion_mask
        truncated = torch.zeros_like(completion_mask[:, 0], dtype=torch.bool)  # (B,)
        if self.mask_truncated_completions:
            # TRL zeroed these rows' mask; every completion that ended properly keeps ≥ 1 token.
            # A truncated row does not end in pad, so its tokens run to its last non-pad one.
            truncated = completion_mask.sum(-1) == 0
            positions = torch.arange(completion_ids.size(1), device=completion_ids.device)
            real = completion_ids != self._tokenizer.pad_token_id
            last = torch.where(real, positions, -1).amax(-1, keepdim=True)  # (B, 1)
            raw = (positions <= last).to(completion_mask.dtype)  # (B, T)
            attention = torch.where(truncated[:, None], raw, completion_mask)
        token_logps = out.get("old_per_token_logps")
        sampled, self._lens_sampled_logps = self._lens_sampled_logps, None
        if token_logps is None and sampled is not None and sampled.shape[0] == len(attention):
            width = completion_ids.size(1)
            # the sampler's (B, steps) log-probs; TRL's completions may be padded wider
            token_logps = torch.nn.functional.pad(sampled, (0, max(0, width - sampled.shape[1])))
            token_logps = token_logps[:, :width].to(completion_ids.device)
        recompute = token_logps is None
        if not recompute and self.mask_truncated_completions:
            # Decided on every rank together: under ZeRO-3 a forward pass is collective.
            any_truncated = self.accelerator.gather(truncated.any().long()[None])
            recompute = bool(any_truncated.any())
        if recompute:
            batch_size = (
                self.args.per_device_train_batch_size
                if mode == "train"
                else self.args.per_device_eval_batch_size
            )
            forward = {key: out[key] for key in FORWARD_KEYS if key in out}
            with (
                torch.no_grad(),
                disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),  # type: ignore[arg-type]
            ):
                token_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model,
                    torch.cat([out["prompt_ids"], completion_ids], dim=1),
                    torch.cat([out["prompt_mask"], attention], dim=1),
                    completion_ids.size(1),
                    batch_size=batch_size,
                    **forward,
                )  # (B, T)
        assert token_logps is not None
        mask = attention
        if "tool_mask" in out:  # tool outputs are not the policy's tokens
            mask = torch.where(truncated[:, None], attention, attention * out["tool_mask"])
        return sequence_mean_logprob(token_logps.float(), mask)
