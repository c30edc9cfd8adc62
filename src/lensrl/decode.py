"""One decoding step at a time over a KV cache: the sampler's model calls.

:func:`lensrl.rollout.generate` asks a *decoder* for the next-token logits of the rows it is
still sampling. Two implementations compute the same values:

- :class:`HFDecoder` calls the model's own ``forward`` with a ``DynamicCache`` whose layers
  append into a buffer (:func:`_buffered_layer_class`). It works for any causal LM.
- :class:`LlamaDecoder` runs a Llama decode step directly on the model's weights: the same
  operations in the same order as ``LlamaForCausalLM.forward`` (RMSNorm, rotary from the
  model's own ``rotary_emb``, SDPA, SiLU MLP), without the per-layer module, kwargs and
  mask-building machinery that dominates a decode step of a small model. Projections that are
  not plain ``nn.Linear`` (LoRA adapters) run their own forward. Its logits are compared with
  the model's own forward in tests/test_decode.py.

Both prefill the prompts once through the model's ``forward`` and repeat the cache G times.

Shapes: ``P`` prompts, ``N`` = ``P``·G rows, ``n`` rows still in the cache, ``L`` cached
positions, ``V`` vocabulary.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class Decoder(Protocol):
    """What the sampling loop needs from a model."""

    def prefill(self, ids: Tensor, mask: Tensor, positions: Tensor, repeats: int) -> Tensor:
        """Run ``(P, Lp)`` prompts, keep their cache ``repeats`` times; ``(P·repeats, V)``
        logits of the next token."""
        ...

    def step(self, tokens: Tensor, attention: Tensor, positions: Tensor) -> Tensor:
        """``(n,)`` new tokens at ``(n, 1)`` positions, ``(n, L + 1)`` mask over the cache and
        the new token → ``(n, V)`` logits of the next token."""
        ...

    def select(self, keep: Tensor) -> None:
        """Keep only the cached rows ``keep`` (``(n',)`` indices), in that order."""
        ...


def make_decoder(model: Any) -> Decoder:
    """The fastest decoder that computes ``model``'s own logits."""
    return LlamaDecoder(model) if LlamaDecoder.supports(model) else HFDecoder(model)


def _prefill(model: Any, ids: Tensor, mask: Tensor, positions: Tensor, cache: Any) -> Tensor:
    """The model's forward over ``(P, Lp)`` prompts into ``cache``; ``(P, V)`` logits of the
    next token (the LM head runs on the last position only)."""
    return model(  # type: ignore[no-any-return]
        input_ids=ids, attention_mask=mask, position_ids=positions,
        past_key_values=cache, use_cache=True, logits_to_keep=1,
    ).logits[:, -1]


class HFDecoder:
    """The model's ``forward`` over a ``DynamicCache`` that appends in place."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache()  # lazily one full-attention layer per model layer...
        self.cache.layer_class_to_replicate = _buffered_layer_class()  # ...appending in place

    def prefill(self, ids: Tensor, mask: Tensor, positions: Tensor, repeats: int) -> Tensor:
        logits = _prefill(self.model, ids, mask, positions, self.cache)
        self.cache.batch_repeat_interleave(repeats)
        return logits.repeat_interleave(repeats, 0)

    def step(self, tokens: Tensor, attention: Tensor, positions: Tensor) -> Tensor:
        return self.model(  # type: ignore[no-any-return]
            input_ids=tokens[:, None], attention_mask=attention, position_ids=positions,
            past_key_values=self.cache, use_cache=True,
        ).logits[:, -1]

    def select(self, keep: Tensor) -> None:
        self.cache.batch_select_indices(keep)


class LlamaDecoder:
    """A Llama decode step on the model's weights, over per-layer key/value buffers.

    Prefill is the model's own ``forward``; each later token runs ``embed → [RMSNorm → q,k,v →
    rotary → cache → SDPA → o → +; RMSNorm → SiLU MLP → +] × layers → RMSNorm → lm_head`` as
    ``LlamaForCausalLM`` does, with the cache in buffers that double when full.
    """

    @staticmethod
    def supports(model: Any) -> bool:
        """Exactly ``LlamaForCausalLM`` (not a subclass) with the plain Llama layer: no biases,
        SiLU, one tensor-parallel slice, and SDPA or eager attention (the same softmax)."""
        from transformers import LlamaForCausalLM

        if type(model) is not LlamaForCausalLM:
            return False
        c = model.config
        return bool(
            c.hidden_act == "silu"
            and not getattr(c, "attention_bias", False)
            and not getattr(c, "mlp_bias", False)
            and getattr(c, "pretraining_tp", 1) == 1
            and getattr(c, "_attn_implementation", "sdpa") in ("sdpa", "eager")
        )

    def __init__(self, model: Any) -> None:
        c = model.config
        self.model = model
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // self.heads
        self.keys: list[Tensor] = []  # per layer (n, kv_heads, capacity, head_dim)
        self.values: list[Tensor] = []
        self.length = 0

    def prefill(self, ids: Tensor, mask: Tensor, positions: Tensor, repeats: int) -> Tensor:
        from transformers import DynamicCache

        cache = DynamicCache()
        logits = _prefill(self.model, ids, mask, positions, cache)
        self.length = ids.shape[1]
        self.keys = [self._room(layer.keys, 32, repeats) for layer in cache.layers]
        self.values = [self._room(layer.values, 32, repeats) for layer in cache.layers]
        return logits.repeat_interleave(repeats, 0)  # type: ignore[no-any-return]

    def select(self, keep: Tensor) -> None:
        self.keys = [k.index_select(0, keep) for k in self.keys]
        self.values = [v.index_select(0, keep) for v in self.values]

    def _room(self, x: Tensor, spare: int, repeats: int = 1) -> Tensor:
        """``x``'s first ``self.length`` positions, each row ``repeats`` times in a row, in a
        buffer with ``spare`` more slots."""
        n, h, _, d = x.shape
        buf = x.new_empty((n * repeats, h, self.length + spare, d))
        buf.view(n, repeats, h, -1, d)[:, :, :, : self.length] = x[:, None, :, : self.length]
        return buf

    @staticmethod
    def _rms_norm(x: Tensor, norm: Any) -> Tensor:
        """``LlamaRMSNorm.forward``."""
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
        return norm.weight * h.to(x.dtype)  # type: ignore[no-any-return]

    def step(self, tokens: Tensor, attention: Tensor, positions: Tensor) -> Tensor:
        m = self.model.model
        n, t = tokens.shape[0], self.length
        if t == self.keys[0].shape[2]:  # full: double the buffers
            self.keys = [self._room(k, spare=t) for k in self.keys]
            self.values = [self._room(v, spare=t) for v in self.values]
        H, Hkv, D = self.heads, self.kv_heads, self.head_dim
        x = m.embed_tokens(tokens)  # (n, E)
        cos, sin = m.rotary_emb(x, positions)  # (n, 1, D), as the model computes them
        cos, sin = cos.view(n, 1, D), sin.view(n, 1, D)
        mask = attention.bool()[:, None, None, :]  # (n, 1, 1, t + 1): padding is False
        half = D // 2
        for i, layer in enumerate(m.layers):
            a = layer.self_attn
            h = self._rms_norm(x, layer.input_layernorm)
            q = _linear(a.q_proj, h).view(n, H, D)
            k = _linear(a.k_proj, h).view(n, Hkv, D)
            # rotary: x·cos + rotate_half(x)·sin
            q = q * cos + torch.cat((-q[..., half:], q[..., :half]), -1) * sin
            k = k * cos + torch.cat((-k[..., half:], k[..., :half]), -1) * sin
            self.keys[i][:, :, t] = k
            self.values[i][:, :, t] = _linear(a.v_proj, h).view(n, Hkv, D)
            o = F.scaled_dot_product_attention(
                q[:, :, None], self.keys[i][:, :, : t + 1], self.values[i][:, :, : t + 1],
                attn_mask=mask, scale=a.scaling, enable_gqa=Hkv != H,
            )  # (n, H, 1, D)
            x = x + _linear(a.o_proj, o.reshape(n, H * D))
            h = self._rms_norm(x, layer.post_attention_layernorm)
            mlp = layer.mlp
            x = x + _linear(mlp.down_proj, F.silu(_linear(mlp.gate_proj, h))
                            * _linear(mlp.up_proj, h))
        self.length = t + 1
        return self.model.lm_head(self._rms_norm(x, m.norm))  # type: ignore[no-any-return]


def _linear(module: Any, x: Tensor) -> Tensor:
    """A projection of the decode step: a plain ``nn.Linear`` (no bias in a Llama) as the bare
    matmul; anything else, such as a peft LoRA layer (lensrl.policy.add_lora), through its own
    forward, so the adapters count exactly as in the model's forward."""
    if type(module) is torch.nn.Linear:
        return F.linear(x, module.weight, module.bias)
    return module(x)  # type: ignore[no-any-return]


def _buffered_layer_class() -> type:
    """A ``DynamicLayer`` that appends into a buffer with spare room instead of concatenating.

    ``DynamicLayer.update`` does ``torch.cat`` per token and layer, copying the whole cache each
    step (a third of the sampling time on small models); here each step writes one slot and the
    buffer doubles when full. Attention sees ``keys``/``values`` as views of the filled part:
    the same values, so the same logits.
    """
    from transformers.cache_utils import DynamicLayer

    class BufferedLayer(DynamicLayer):  # type: ignore[misc]
        length = 0

        def update(self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any
                   ) -> tuple[Tensor, Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self._rebuffer(key_states, value_states, spare=key_states.shape[-2])
                return self.keys, self.values
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2]:
                self._rebuffer(self.keys, self.values, spare=end)
            self._k[..., self.length : end, :] = key_states
            self._v[..., self.length : end, :] = value_states
            self._set_length(end)
            return self.keys, self.values

        def batch_repeat_interleave(self, repeats: int) -> None:
            super().batch_repeat_interleave(repeats)
            self._rebuffer(self.keys, self.values, spare=self.length)

        def batch_select_indices(self, indices: Tensor) -> None:
            super().batch_select_indices(indices)
            self._rebuffer(self.keys, self.values, spare=self.length)

        def _rebuffer(self, keys: Tensor, values: Tensor, spare: int) -> None:
            """Copy ``(B, H, L, D)`` keys and values into buffers with ``spare`` free slots."""
            b, h, length, d = keys.shape
            self._k = keys.new_empty((b, h, length + max(spare, 16), d))
            self._v = values.new_empty((b, h, length + max(spare, 16), values.shape[-1]))
            self._k[..., :length, :] = keys
            self._v[..., :length, :] = values
            self._set_length(length)

        def _set_length(self, length: int) -> None:
            self.length = length
            self.keys = self._k[..., :length, :]
            self.values = self._v[..., :length, :]

    return BufferedLayer
