"""The π_old recorder: log-probs of the tokens ``generate`` samples, recorded during sampling so
that LENS's confidence needs no extra forward pass."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SampledLogprobs:
    """Records log softmax(logits / T) of each token ``generate`` samples, from the model's raw
    logits (before any logits processor: π_old is the policy's probability of the token,
    however it was sampled, as TRL's own forward pass computes it).

    :meth:`step` sees each forward call of ``generate``: its ``input_ids`` end with the token
    sampled from the previous call's logits (the first call is the prompt); :meth:`logps`
    takes the last one from the completions. Rows that have finished record padding, which
    the mask drops.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.previous: torch.Tensor | None = None  # (B, V) log-probs of the last call
        self.steps: list[torch.Tensor] = []  # (B,) per sampled token

    def step(self, input_ids: torch.Tensor, logits: torch.Tensor) -> None:
        self._take(input_ids[:, -1])
        self.previous = (logits.float() / self.temperature).log_softmax(-1)

    def _take(self, tokens: torch.Tensor) -> None:
        if self.previous is not None:
            self.steps.append(self.previous.gather(-1, tokens[:, None]).squeeze(-1))

    def logps(self, completions: Sequence[Sequence[int]]) -> torch.Tensor | None:
        """``(B, S)`` for ``S`` sampled tokens. The last step's token had no forward call after
        it: it is the last token of the completions that ran ``S`` tokens long."""
        if self.previous is None:
            return None
        width = len(self.steps) + 1
        last = [c[width - 1] if len(c) >= width else 0 for c in completions]
        self._take(torch.tensor(last, device=self.previous.device))
        return torch.stack(self.steps, 1)
