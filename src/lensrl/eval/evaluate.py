"""Sample, verify, count: the evaluation JSON of one checkpoint.

Where it goes and the rules for writing and reading it are :mod:`lensrl.runs`'s
(:func:`~lensrl.runs.write_eval`, :func:`~lensrl.runs.read_eval`). The JSON
(``runs/<name>/eval/<step>.json``, schema 1) keeps per-problem ``(n, c)`` so any k or
bucket can be recomputed later::

    {"schema": 1, "step": 200, "run": {...}, "sampling": {"samples": 16, "temperature": 1.0,
     "top_p": 1.0, "max_new_tokens": 512, "seed": 0},
     "bootstrap": {"resamples": 2000, "confidence": 0.95, "seed": 0},
     "ks": [1, 2, 4, 8, 16], "unjudged": 3, "samples_total": 8000,
     "problems": [{"id": "...", "level": 3, "subject": "...", "n": 16, "c": 5, "unjudged": 0}],
     "pass_at_k": {"all": {"1": {"mean": .., "ci": [lo, hi], "problems": 500}, ..},
                   "level_1": {..}, .., "levels_4-5": {..}}}

Unjudged samples (``Verdict.correct is None``: the verifier could not decide) count in ``n`` and
not in ``c`` (a timeout counts as wrong, as in the Qwen2.5-Math harness does; docs/evaluation.md),
and their number is kept per problem and in total so a reader can see how much that choice weighs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lensrl.eval.passk import ALL, DEFAULT_KS, summarize

SCHEMA = 1

Generate = Callable[..., list[list[str]]]
Verify = Callable[..., list[Any]]


def _level(value: Any) -> int | None:
    """Problem levels as ints; ``"Level 3"`` → 3; missing or unparsable → None."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    return int(digits) if digits else None


def evaluate(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Any],
    *,
    prompts: Sequence[str],
    samples: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int,
    seed: int = 0,
    step: int = 0,
    ks: Sequence[int] = DEFAULT_KS,
    batch_prompts: int = 32,
    resamples: int = 2000,
    confidence: float = 0.95,
    generate: Generate | None = None,
    verify: Verify | None = None,
) -> dict[str, Any]:
    """Sample ``samples`` completions per problem, verify them and summarise pass@k.

    Args:
        model, tokenizer: handed to ``generate`` unchanged.
        problems: ``lensrl.data.Problem``-like records (``id``, ``answer``, ``level``,
            ``subject``), ``P`` of them.
        prompts: ``P`` formatted prompts, aligned with ``problems`` (the caller formats them
            exactly as in training, e.g. with ``lensrl.data.format_prompt``).
        samples: ``n`` completions per problem; ks above ``n`` are skipped.
        temperature, top_p, max_new_tokens: sampling (LENS paper: 1.0, 1.0).
        seed, step: the run's seed and the evaluated step; prompt chunk ``i`` is sampled from
            the stream :func:`stream_seed` ``(seed, step, i)``, so results depend on
            ``batch_prompts`` too. ``seed`` also seeds the bootstrap.
        batch_prompts: prompts per ``generate`` call (bounds memory).
        resamples, confidence: the bootstrap CI over problems.
        generate: defaults to ``lensrl.rollout.sample_completions``.
        verify: defaults to ``lensrl.verify.verify_batch``.

    Returns the eval JSON content (see the module docstring) without ``step`` or ``run``.
    """
    if len(prompts) != len(problems):
        raise ValueError(f"prompts has {len(prompts)} entries for {len(problems)} problems")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if batch_prompts < 1:
        raise ValueError(f"batch_prompts must be >= 1, got {batch_prompts}")
    if seed < 0 or step < 0:
        raise ValueError(f"seed and step must be >= 0, got seed={seed}, step={step}")
    if generate is None:
        from lensrl.rollout import sample_completions

        generate = sample_completions
    if verify is None:
        from lensrl.verify import verify_batch

        verify = verify_batch

    records: list[dict[str, Any]] = []
    for chunk, start in enumerate(range(0, len(problems), batch_prompts)):
        probs = problems[start : start + batch_prompts]
        completions = generate(
            model, tokenizer, list(prompts[start : start + batch_prompts]), n=samples,
            temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
            seed=stream_seed(seed, step, chunk),
        )
        records += _count(probs, completions, verify)
    return build_result(
        records,
        sampling=sampling_settings(samples=samples, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, seed=seed,
                                   batch_prompts=batch_prompts),
        ks=ks,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def _count(probs: Sequence[Any], completions: list[list[str]], verify: Verify) -> list[dict[str, Any]]:
    """One chunk's per-problem record: samples ``n``, correct ``c`` and unjudged (a verdict of
    None: counted in ``n``, not in ``c``)."""
    golds = [str(p.answer) for p, outs in zip(probs, completions, strict=True) for _ in outs]
    verdicts = verify(golds, [text for outs in completions for text in outs])
    records, pos = [], 0
    for p, outs in zip(probs, completions, strict=True):
        got = [v.correct for v in verdicts[pos : pos + len(outs)]]
        pos += len(outs)
        records.append({
            "id": str(p.id),
            "level": _level(getattr(p, "level", None)),
            "subject": getattr(p, "subject", None),
            "n": len(got),
            "c": sum(1 for g in got if g is True),
            "unjudged": sum(1 for g in got if g is None),
        })
    return records


def sampling_settings(*, samples: int, temperature: float, top_p: float, max_new_tokens: int,
                      seed: int, batch_prompts: int) -> dict[str, Any]:
    """The ``sampling`` block of an evaluation: everything its draws depend on."""
    return {"samples": samples, "temperature": temperature, "top_p": top_p,
            "max_new_tokens": max_new_tokens, "seed": seed, "batch_prompts": batch_prompts}


def stream_seed(seed: int, step: int, chunk: int) -> int:
    """The sampling seed of prompt chunk ``chunk`` when run seed ``seed`` is evaluated at ``step``.

    Drawn from ``numpy.random.SeedSequence([seed, step, chunk])``, which hashes the tuple, so
    distinct tuples give unrelated streams: with the former ``seed + step + chunk``, run seed 0
    chunk 1 and run seed 1 chunk 0 sampled the same stream, coupling the evaluation noise of
    different seeds. 63 bits, so torch's ``manual_seed`` takes it.
    """
    state = np.random.SeedSequence([seed, step, chunk]).generate_state(1, dtype=np.uint64)
    return int(state[0]) >> 1


def build_result(
    records: Sequence[dict[str, Any]],
    *,
    sampling: dict[str, Any],
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The eval JSON content from per-problem records (also used to rebuild summaries)."""
    return {
        "schema": SCHEMA,
        "sampling": dict(sampling),
        "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed},
        "ks": sorted(set(ks)),
        "unjudged": sum(int(r.get("unjudged", 0)) for r in records),
        "samples_total": sum(int(r["n"]) for r in records),
        "problems": [dict(r) for r in records],
        "pass_at_k": summarize(
            records, ks=ks, resamples=resamples, confidence=confidence, seed=seed
        ),
    }


def summary_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Flat keys for metrics.jsonl: ``eval/pass@k`` and ``eval/pass@k/<bucket>``.

    Buckets are ``level_N`` and ``levels_4-5`` (see :func:`lensrl.eval.passk.bucket_masks`);
    also ``eval/unjudged_frac``, the share of samples the verifier could not judge.
    """
    out: dict[str, float] = {}
    for bucket, by_k in result["pass_at_k"].items():
        for k, cell in by_k.items():
            key = f"eval/pass@{k}" if bucket == ALL else f"eval/pass@{k}/{bucket}"
            out[key] = float(cell["mean"])
    total = int(result.get("samples_total", 0))
    out["eval/unjudged_frac"] = int(result.get("unjudged", 0)) / total if total else float("nan")
    return out
