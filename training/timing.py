"""How long a training loop waits for its input: the signal that says whether the data source
(the service, the DataLoader workers) or the model is the bottleneck."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Waited"]

T = TypeVar("T")


class Waited(Generic[T]):
    """Iterates ``items`` and adds up, in ``seconds``, the time spent waiting for each one."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items = iter(items)
        self.seconds = 0.0

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            return next(self._items)
        finally:
            self.seconds += time.perf_counter() - start
