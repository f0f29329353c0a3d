"""The server's scheduled housekeeping: one loop for every job that runs while it serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

log = logging.getLogger("ketacare")

T = TypeVar("T")


async def every(
    seconds: float,
    job: Callable[[], T],
    *,
    done: Callable[[T], str | None],
    failed: str,
    logger: logging.Logger = log,
) -> None:
    """Run ``job`` in the thread pool at start, then every ``seconds``, until cancelled.

    ``done`` turns its result into a log line (None: nothing worth saying); a failure is
    logged as ``failed``, with the reason, once per turn, and the job runs again at the
    next turn: the server keeps serving either way.
    """
    while True:
        try:
            said = done(await run_in_threadpool(job))
            if said:
                logger.info(said)
        except Exception as exc:  # keep serving; the log says why, once per turn
            logger.error("%s: %s", failed, exc)
        await asyncio.sleep(seconds)
