"""A progress display for long benchmark stages: rich or tqdm when installed, else plain lines.

Plain lines are throttled (at most one every two seconds per stage, plus the last), so a CI log
stays readable and a terminal still shows that something is moving.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO


class Progress:
    """Stages with an optional total; ``advance`` moves the current stage's bar."""

    def __init__(self, stream: TextIO | None = None, backend: str | None = None) -> None:
        self.stream = stream or sys.stderr
        self.backend = backend or _best_backend()
        self._bar: Any = None
        self._stage = ""
        self._total: int | None = None
        self._done = 0
        self._last_line = 0.0
        self._started = 0.0

    def note(self, text: str) -> None:
        """One line of information outside any bar."""
        if self.backend == "rich":
            from rich.console import Console

            Console(file=self.stream).print(text)
        else:
            print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Progress]:
        """A named stage; its duration is printed when it ends."""
        self._stage, self._total, self._done = name, total, 0
        self._started = time.perf_counter()
        self._open_bar()
        try:
            yield self
        finally:
            self._close_bar()
            elapsed = time.perf_counter() - self._started
            self.note(f"[bench] {name}: done in {elapsed:.1f}s")

    def advance(self, amount: int = 1, detail: str = "") -> None:
        self._done += amount
        if self.backend == "tqdm" and self._bar is not None:
            self._bar.update(amount)
            if detail:
                self._bar.set_postfix_str(detail, refresh=False)
        elif self.backend == "rich" and self._bar is not None:
            progress, task = self._bar
            progress.update(task, advance=amount, description=f"{self._stage} {detail}".strip())
        else:
            now = time.monotonic()
            final = self._total is not None and self._done >= self._total
            if now - self._last_line >= 2 or final:
                self._last_line = now
                of = f"/{self._total}" if self._total is not None else ""
                extra = f" ({detail})" if detail else ""
                self.note(f"[bench] {self._stage}: {self._done}{of}{extra}")

    def _open_bar(self) -> None:
        if self.backend == "tqdm":
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, desc=self._stage, file=self.stream, leave=False)
        elif self.backend == "rich":
            from rich.progress import Progress as RichProgress

            progress = RichProgress(transient=True)
            progress.start()
            self._bar = (progress, progress.add_task(self._stage, total=self._total))
        else:
            self.note(f"[bench] {self._stage}…")
            self._last_line = time.monotonic()

    def _close_bar(self) -> None:
        if self._bar is None:
            return
        if self.backend == "tqdm":
            self._bar.close()
        elif self.backend == "rich":
            self._bar[0].stop()
        self._bar = None


def _best_backend() -> str:
    if not sys.stderr.isatty():
        return "plain"
    for name in ("rich", "tqdm"):
        try:
            __import__(name)
        except ImportError:
            continue
        return name
    return "plain"
