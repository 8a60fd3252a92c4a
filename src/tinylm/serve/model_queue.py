"""One model call at a time, with a bounded line of waiting requests.

Every call on the model (a generation, an attention map) runs on one worker thread, so two
requests never share the model at once: a generation's text depends only on its seed, and
inspection's hooks never see another request's forward pass. Decoding sets its thread to one
CPU thread (tinylm.generation.generate.one_thread_on_cpu), which holds for the whole loop only
when the loop stays on that thread. At most `waiting` requests wait for their turn; a request
beyond them is turned away at once (503 with Retry-After) rather than left to stall.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class QueueFull(Exception):
    """The model is busy and `waiting` requests already wait for it."""


class ModelQueue:
    def __init__(self, waiting: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinylm-model")
        self.capacity = waiting + 1  # the call running and those waiting
        self.admitted = 0
        self.lock = threading.Lock()  # submit runs on the event loop, release on the worker

    def submit(self, call: Callable[..., Any], *args: Any) -> Future:
        """Run call(*args) on the model's thread when its turn comes; QueueFull if the line is
        full."""
        with self.lock:
            if self.admitted >= self.capacity:
                raise QueueFull
            self.admitted += 1
        future = self.executor.submit(call, *args)
        future.add_done_callback(self.release)
        return future

    def release(self, _: Future) -> None:
        with self.lock:
            self.admitted -= 1

    def close(self) -> None:
        """Drop the calls that have not started; wait for the running one."""
        self.executor.shutdown(wait=True, cancel_futures=True)
