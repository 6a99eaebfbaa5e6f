"""Run one piece of review work within a time budget, without a thread hop on the fast path.

The API server waits at most the webhook's ``timeoutSeconds`` and then applies its
failurePolicy on its own; the config's ``deadlineSeconds`` is our earlier, self-imposed
limit, so that *our* onError policy answers instead and says why.

Small bodies (the API server's ordinary Pods) are reviewed inline: they are bounded by
``limits`` and take well under a millisecond, and a thread hop would cost more than the
review. Whether they kept the budget is checked afterwards. Large bodies go to a small
thread pool under ``asyncio.wait_for``, so a slow review cannot hold the answer past the
budget; its late result is dropped (Python threads cannot be stopped; the pool's size bounds
how many such stragglers can run at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

# Bodies above this many bytes are reviewed off the event loop.
INLINE_MAX_BYTES = 256 * 1024
# Threads for large reviews; more would only let more late results burn CPU.
OFFLOAD_THREADS = 4

T = TypeVar("T")
Clock = Callable[[], float]


def offload_executor() -> ThreadPoolExecutor:
    """The pool large reviews run in (one per server process)."""
    return ThreadPoolExecutor(OFFLOAD_THREADS, thread_name_prefix="large-review")


async def run_within(work: Callable[[], T], size: int, budget: float, started: float,
                     executor: Executor | None = None, clock: Clock = time.perf_counter) -> T | None:
    """``work()``'s result, or None when it did not finish within ``budget`` seconds of ``started``.

    ``size`` (the body's length) picks inline or pooled; ``started`` is when the request began,
    so time spent reading the body counts too.
    """
    if size <= INLINE_MAX_BYTES:
        result = work()
    else:
        remaining = budget - (clock() - started)
        if remaining <= 0:
            return None
        future = asyncio.get_running_loop().run_in_executor(executor, work)
        try:
            result = await asyncio.wait_for(future, remaining)
        except TimeoutError:
            return None
    return result if clock() - started <= budget else None
