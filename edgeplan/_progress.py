"""Progress bars and logging for the long-running functions (simulations, validations, sweeps).

Every function that can run for more than a few seconds takes ``progress`` (``True``, ``False``, or ``None``:
a bar only when standard error is a terminal) and logs its steps at INFO level to the ``edgeplan`` logger
tree (``edgeplan.experiments.fl_rounds``, ``edgeplan.validation.fl`` ...). edgeplan adds no handler of its own
(a ``NullHandler``): ``logging.basicConfig(level=logging.INFO)`` or the CLI's ``-v`` shows them.
"""

from __future__ import annotations

import sys
from typing import Any


class _NoBar:
    """The bar's interface, doing nothing (``progress`` off)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, desc: str, progress: bool | None, unit: str = "it") -> Any:
    """A tqdm bar of ``total`` steps when ``progress`` (``None``: when stderr is a terminal), else a no-op."""
    shown = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not shown:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


__all__ = ["progress_bar"]
