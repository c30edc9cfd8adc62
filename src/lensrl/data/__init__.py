"""Problems: the record type, loaders for MATH-style files, the built-in task, prompt formatting,
and a run's training stream and held-out split.

Imports neither torch nor ``datasets`` (that one only when a ``datasets`` folder is loaded).
"""

from lensrl.data.builtin import ALPHABET, BUILTIN_LEVELS, BUILTIN_TEMPLATE, builtin_problems
from lensrl.data.loading import load_problems
from lensrl.data.problem import DataError, Problem
from lensrl.data.prompts import PLAIN_TEMPLATE, format_prompt
from lensrl.data.sampler import ProblemSampler, heldout_problems, train_problems

__all__ = [
    "ALPHABET",
    "BUILTIN_LEVELS",
    "BUILTIN_TEMPLATE",
    "PLAIN_TEMPLATE",
    "DataError",
    "Problem",
    "ProblemSampler",
    "builtin_problems",
    "format_prompt",
    "heldout_problems",
    "load_problems",
    "train_problems",
]
