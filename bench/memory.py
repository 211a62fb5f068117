"""Peak resident memory of the processes under test, sampled in the background with psutil.

A process is watched by name and pid; its peak includes its children (a launcher script and the
Python interpreter it starts count as one service). Sampling every 100 ms can miss a very short
spike, which is fine for the question asked: how much memory does a service need.
"""

from __future__ import annotations

import contextlib
import threading


class PeakMemory:
    """Background sampler of the RSS of named process trees; ``peaks()`` in MiB."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._watched: dict[str, list[int]] = {}
        self._peaks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        """Track the process ``pid`` (and its children) under ``name``; many pids may share one."""
        with self._lock:
            self._watched.setdefault(name, []).append(pid)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
            self._thread.start()

    def add_sample(self, name: str, mib: float) -> None:
        """Record a peak measured elsewhere (for example ``ru_maxrss`` of a finished child)."""
        with self._lock:
            self._peaks[name] = max(self._peaks.get(name, 0.0), mib)

    def peaks(self) -> dict[str, float]:
        with self._lock:
            return {name: round(value, 1) for name, value in self._peaks.items()}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            with self._lock:
                watched = {name: list(pids) for name, pids in self._watched.items()}
            for name, pids in watched.items():
                total = 0
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        process = psutil.Process(pid)
                        total += process.memory_info().rss
                        for child in process.children(recursive=True):
                            with contextlib.suppress(psutil.Error):
                                total += child.memory_info().rss
                if total:
                    self.add_sample(name, total / 2**20)
