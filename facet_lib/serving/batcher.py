"""Micro-batching across concurrent callers with a bounded wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from facet_lib.config.serve import ServeConfig

_DEFAULTS = ServeConfig()  # max_batch, max_wait_ms: the server's defaults, one source


class MicroBatcher:
    """Runs ``fn`` once on the stacked samples of concurrent requests in a worker thread and hands each
    caller its rows. A batch takes what queued up while the previous one ran (up to ``max_batch``
    samples), then waits at most ``max_wait_ms`` for more: with 0 a lone caller never waits."""

    def __init__(
        self,
        fn: Callable[[np.ndarray], list],
        max_batch: int = _DEFAULTS.max_batch,
        max_wait_ms: float = _DEFAULTS.max_wait_ms,
    ):
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0

    async def submit(self, views: np.ndarray) -> list:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # the queue and its worker belong to one event loop
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run())
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((views, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            n = len(items[0][0])
            while n < self.max_batch and not self.queue.empty():  # what queued up during the last batch
                items.append(self.queue.get_nowait())
                n += len(items[-1][0])
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                items.append(item)
                n += len(item[0])
            batch = np.concatenate([v for v, _ in items])
            self.batches += 1
            try:
                out = await loop.run_in_executor(None, self.fn, batch)
            except Exception as e:  # deliver the failure to every waiting caller
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            k = 0
            for v, fut in items:
                if not fut.done():
                    fut.set_result(out[k : k + len(v)])
                k += len(v)
