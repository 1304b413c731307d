"""A log line that an outage repeats for every request: written once, then counted.

During a database outage every request answers 503, and one ERROR line per answer buried the
log (2,118 lines in 4 s in the load drill) and cost disk and I/O when the machine was already
in trouble. Per process, the first occurrence is logged at once; later ones within ``every``
seconds are only counted, and the next occurrence after that logs one summary line ("N more in
the last X s") and opens a new window. A long outage thus writes one line per window per
worker; the count of a short one is written with its next occurrence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RepeatedLogLine:
    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._message = message
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._unlogged = 0

    def error(self) -> None:
        with self._lock:
            now = self._clock()
            start = self._window_start
            if start is not None and now - start < self._every:
                self._unlogged += 1
                return
            unlogged, self._unlogged, self._window_start = self._unlogged, 0, now
        if unlogged and start is not None:
            self._logger.error(
                "%s (%d more in the last %.0f s)", self._message, unlogged, now - start
            )
        else:
            self._logger.error("%s", self._message)
