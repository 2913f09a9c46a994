"""Peak resident memory of a block of code, shared by the benchmark scripts."""

from __future__ import annotations

import threading
import time

import psutil


class PeakRSS:
    """The highest resident set size of this process while the block runs (`peak`), sampled every 20 ms,
    and the size when it began (`base`)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
