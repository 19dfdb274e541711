"""A background thread that keeps items ready ahead of their consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Prefetch"]


class Prefetch:
    """Items made by a background thread, at most ``size`` ahead of the consumer.

    ``produce()`` is called on the thread and its items are passed through ``convert`` there;
    an exception on the thread is raised to the consumer. ``close()`` stops the thread (also
    when nothing was consumed).
    """

    def __init__(self, produce: Callable[[], Iterator[Any]], convert: Callable[[Any], Any],
                 size: int) -> None:
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(produce, convert),
                                        name="augsvc-prefetch", daemon=True)
        self._thread.start()

    def _run(self, produce: Callable[[], Iterator[Any]], convert: Callable[[Any], Any]) -> None:
        try:
            for item in produce():
                if not self._put(convert(item)):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)  # bounded: never runs far ahead
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._ready.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._ready.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)


_END = object()  # the producer's last item
