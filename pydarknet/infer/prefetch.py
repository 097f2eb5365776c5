"""Prefetching: produce the next items in a background thread while the network runs.

Decoding JPEGs (OpenCV), Darknet's letterbox (numpy) and the forward
(torch) all release the GIL for most of their time, so one thread that
loads and letterboxes the next batch overlaps the current forward.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
JOIN_SECONDS = 10.0  # the longest wait for the thread to finish its item when the consumer stops


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of `items` in order, computed by a background thread up to `depth` ahead.

    An exception raised while producing an item is raised here, at that item.
    Stopping early (break, close, an exception) stops the thread after its current item and waits for
    it (up to `JOIN_SECONDS`), so that what it reads from (a video capture) can be released safely.
    """
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put(_Failure(err))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="pydarknet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = slots.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value
    finally:
        stop.set()
        thread.join(JOIN_SECONDS)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
