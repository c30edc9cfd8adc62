"""``lensrl eval``: pass@k by level with bootstrap CIs for one checkpoint of a run.

Writes ``<run-dir>/eval/<step>.json`` (see :mod:`lensrl.eval.evaluate`) and prints a summary.
It may run beside training in the same run folder: it only reads a checkpoint (written whole,
then renamed into place) and writes through :func:`lensrl.runs.write_eval`, which holds the
run folder's evaluation lock (not training's) for the check and the write.
Problems default to the run's own held-out split: the built-in task's ``test`` split with the
run's ``task.eval_problems``, ``task.levels`` and ``task.seed``. For a file dataset, pass
``--data`` (the run folder does not say which file is held out).
"""

from __future__ import annotations

import argparse
from typing import Any

from lensrl.eval.evaluate import evaluate, sampling_settings, summary_metrics
from lensrl.eval.passk import DEFAULT_KS, bucket_label
from lensrl.runs import check_eval_target, eval_path, eval_settings, write_eval


def load_eval_problems(cfg: dict[str, Any], data: str | None, limit: int | None) -> list[Any]:
    """The problems to evaluate: ``--data`` (a file or ``builtin``), else the run's held-out
    split, built as training built it (lensrl.data.heldout_problems)."""
    from lensrl.data.sampler import DEFAULT_HELDOUT, heldout_problems

    task = cfg.get("task", {})
    if limit is None and data is None and not task.get("eval_problems"):
        limit = DEFAULT_HELDOUT  # the run evaluated nothing while training: a default-sized held-out set
    problems = heldout_problems(task, limit=limit, data=data)
    if not problems:
        raise ValueError(
            f"the run trained on {task.get('dataset')!r} and names no task.eval_dataset; say "
            "which held-out file to evaluate with --data PATH"
        )
    return problems


def format_summary(result: dict[str, Any]) -> str:
    ks = sorted({int(k) for by_k in result["pass_at_k"].values() for k in by_k})
    lines = [f"{'bucket':<11}{'n':>5}" + "".join(f"{'pass@' + str(k):>24}" for k in ks)]
    for bucket, by_k in result["pass_at_k"].items():
        first = next(iter(by_k.values()))
        cells = ""
        for k in ks:
            cell = by_k[str(k)]
            lo, hi = cell["ci"]
            cells += f"{100 * cell['mean']:>9.2f}% [{100 * lo:5.1f},{100 * hi:5.1f}]%"
        lines.append(f"{bucket_label(bucket):<11}{first['problems']:>5}{cells}")
    lines.append(
        f"unjudged samples (counted as wrong): {result['unjudged']} of {result['samples_total']}"
    )
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_float, positive_int, unit_interval

    parser.add_argument("--run-dir", required=True, help="the run folder")
    parser.add_argument(
        "--checkpoint", type=int, default=None, help="checkpoint step (default: the latest)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="problems file or 'builtin' (default: the run's held-out split)",
    )
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="evaluate only the first N problems")
    parser.add_argument("--samples", type=positive_int, default=16,
                        help="completions per problem (n); every k of --ks must be <= n")
    parser.add_argument("--temperature", type=positive_float, default=1.0,
                        help="sampling temperature")
    parser.add_argument("--top-p", type=unit_interval, default=1.0,
                        help="nucleus sampling: the smallest set of tokens with this much mass")
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=None,
        help="completion length limit (default: the run's rollout.max_new_tokens)"
    )
    parser.add_argument("--ks", type=positive_int, nargs="+", default=None,
                        help="the k of each pass@k, each <= --samples (default: those of "
                        f"{' '.join(map(str, DEFAULT_KS))} that are <= --samples)")
    parser.add_argument("--batch-prompts", type=positive_int, default=32,
                        help="prompts per generate call (memory only)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="sampling and bootstrap seed (default: the run's run.seed, as in training's evals)",
    )
    parser.add_argument("--resamples", type=positive_int, default=2000,
                        help="bootstrap resamples")
    parser.add_argument(
        "--name", default=None, metavar="NAME",
        help="write eval/<step>.NAME.json, beside the run's own eval/<step>.json (read it back "
        "with compare --eval-name NAME)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing evaluation of this step made with other settings",
    )


def check_ks(ks: list[int], samples: int) -> None:
    """pass@k needs k <= n: a k above ``--samples`` would silently yield no estimate."""
    over = [k for k in ks if k > samples]
    if over:
        raise ValueError(f"--ks {' '.join(map(str, over))}: pass@k needs k <= --samples "
                         f"({samples}); raise --samples or drop those k")


def _verifier(cfg: Any) -> Any:
    """``verify_batch`` with the run's ``verify.strict_eval`` and ``verify.timeout``."""
    import functools

    from lensrl.verify import verify_batch

    return functools.partial(verify_batch, strict=cfg.verify.strict_eval,
                             timeout=cfg.verify.timeout)


def _problems_and_prompts(args: argparse.Namespace, cfg: Any, raw: dict[str, Any],
                          tokenizer: Any) -> tuple[list[Any], list[str]]:
    """The problems to evaluate and their prompts, formatted as in training."""
    from lensrl.data import format_prompt

    problems = load_eval_problems(raw, args.data, args.limit)
    return problems, [format_prompt(p, tokenizer, template=cfg.task.template) for p in problems]


def _evaluate(args: argparse.Namespace, cfg: Any, model: Any, tokenizer: Any, step: int,
              problems: list[Any], prompts: list[str], sampling: dict[str, Any]) -> dict[str, Any]:
    """Sample and verify under the run's compute dtype (bf16 under autocast where it is fast,
    over fp32 weights); the result with its ``run`` block."""
    import torch

    from lensrl.train.precision import autocast, select_dtype

    dtype, _ = select_dtype(cfg.model.dtype, torch.device("cpu"))
    with autocast("cpu", dtype):
        result = evaluate(
            model, tokenizer, problems, prompts=prompts, samples=sampling["samples"],
            temperature=sampling["temperature"], top_p=sampling["top_p"],
            max_new_tokens=sampling["max_new_tokens"], seed=sampling["seed"], step=step,
            ks=args.ks, batch_prompts=sampling["batch_prompts"], resamples=args.resamples,
            verify=_verifier(cfg),
        )
    result["run"] = {
        "name": cfg.run.name,
        "seed": cfg.run.seed,
        "estimator": cfg.algo.estimator,
        "data": args.data if args.data is not None else cfg.task.dataset,
    }
    return result


def run(args: argparse.Namespace) -> int:
    """Errors (a bad flag, no checkpoint, an evaluation with other settings already there) are
    raised for :func:`lensrl.cli.main`: one line and exit 2, before the sampling starts."""
    from lensrl.policy import load_checkpoint
    from lensrl.train.config import TrainConfig

    if args.ks is None:
        args.ks = [k for k in DEFAULT_KS if k <= args.samples]
    check_ks(args.ks, args.samples)
    model, tokenizer, step, raw = load_checkpoint(args.run_dir, args.checkpoint)
    # typed, so that a setting the saved config lacks (an older run) reads as its default
    cfg = TrainConfig.from_dict(raw, source=f"{args.run_dir}/config.json")
    target = eval_path(args.run_dir, step, args.name)  # a bad --name fails before the work
    problems, prompts = _problems_and_prompts(args, cfg, raw, tokenizer)
    # Streams come from (seed, step, chunk): by default each run's own seed, so two seeds'
    # evaluations never share sampling noise.
    sampling = sampling_settings(
        samples=args.samples, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens or cfg.rollout.max_new_tokens,
        seed=args.seed if args.seed is not None else cfg.run.seed,
        batch_prompts=args.batch_prompts)
    if not args.overwrite:  # refuse before the work; write_eval checks again under its lock
        check_eval_target(target, eval_settings(sampling, [p.id for p in problems]))
    result = _evaluate(args, cfg, model, tokenizer, step, problems, prompts, sampling)
    print(format_summary(result))
    path = write_eval(args.run_dir, step, result, name=args.name, overwrite=args.overwrite)
    print(f"wrote {path}")
    metrics = summary_metrics(result)
    if "eval/pass@1" in metrics:
        print(f"pass@1 = {100 * metrics['eval/pass@1']:.2f}%")
    return 0
