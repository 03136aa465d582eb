r"""top-nσ sampling as a ``transformers`` logits processor.

Tang, Liu, Xu, Huang, "Top-nσ: Not All Logits Are You Need", arXiv 2411.07641. Keep the tokens whose
pre-softmax logit satisfies :math:`\ell_i \ge \max_j \ell_j - n\,\sigma(\ell)`, with :math:`\sigma` the standard
deviation over the whole vocabulary; the rest get :math:`-\infty`. Temperature divides every logit, and with it
the maximum and :math:`\sigma`, so the kept set does not depend on temperature.
"""

from __future__ import annotations

from typing import Any

from edgeplan.errors import ProblemDataError


def top_nsigma_mask(logits: Any, n: float) -> Any:
    """Boolean mask of the kept tokens, :math:`\\ell \\ge \\max \\ell - n \\sigma(\\ell)` per row."""
    top = logits.max(dim=-1, keepdim=True).values
    sigma = logits.std(dim=-1, unbiased=False, keepdim=True)
    return logits >= top - n * sigma


def _base() -> type:
    from transformers import LogitsProcessor

    return LogitsProcessor


class TopNSigma(_base()):  # type: ignore[misc]
    """A ``transformers`` ``LogitsProcessor``: logits below :math:`\\max - n\\sigma` become ``-inf``.

    Parameters
    ----------
    n
        :math:`n > 0` (the paper's default is 1).
    """

    def __init__(self, n: float = 1.0) -> None:
        if not isinstance(n, int | float) or isinstance(n, bool) or not n > 0:
            raise ProblemDataError(f"`n` = {n!r}; expected a number > 0")
        self.n = float(n)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return scores.masked_fill(~top_nsigma_mask(scores, self.n), float("-inf"))


__all__ = ["TopNSigma", "top_nsigma_mask"]
