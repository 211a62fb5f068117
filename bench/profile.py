"""Where the time goes: py-spy samples of a process under test, summarized per function.

py-spy samples from outside (``--nonblocking``: the process is never paused), so the numbers of
the measurement it watches stay honest. Only on-CPU samples are kept (py-spy's default), which
shows what the process computes; time spent waiting on slapd or Keycloak shows up in those
servers, not here. Without py-spy installed the profile is simply absent.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


@dataclass
class Profile:
    """Sample counts per function: inclusive (anywhere on the stack) and self (on top)."""

    samples: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)

    def top(self, count: int = 8, *, own_code: bool = True) -> list[tuple[str, float]]:
        """The functions with most inclusive samples, as fractions of all samples."""
        if not self.samples:
            return []
        rows = [
            (name, hits / self.samples)
            for name, hits in self.inclusive.most_common()
            if not own_code or _is_project(name)
        ]
        return rows[:count]

    def top_self(self, count: int = 8) -> list[tuple[str, float]]:
        if not self.samples:
            return []
        return [(name, hits / self.samples) for name, hits in self.self_time.most_common(count)]

    def notes(self, what: str) -> list[str]:
        """Lines for the report: where ``what`` spent its CPU time."""
        if not self.samples:
            return []

        def fmt(rows: list[tuple[str, float]]) -> str:
            return "; ".join(f"{name} {share:.0%}" for name, share in rows)

        return [
            f"py-spy, {what}, {self.samples} on-CPU samples. Project code (inclusive): "
            f"{fmt(self.top(8))}",
            f"py-spy, {what}, hottest leaf functions (self): {fmt(self.top_self(6))}",
        ]


_PROJECT = ("approval_portal/", "iacs/", "sync/", "keycloak_config/")


def _is_project(name: str) -> bool:
    return any(part in name for part in _PROJECT)


def parse_collapsed(text: str) -> Profile:
    """py-spy's ``--format raw`` output (collapsed stacks: ``f1;f2;f3 count``)."""
    profile = Profile()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        hits = int(count)
        frames = [_name(frame) for frame in stack.split(";") if frame]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        profile.samples += hits
        for name in set(frames):
            profile.inclusive[name] += hits
        profile.self_time[frames[-1]] += hits
    return profile


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in _PROJECT:
        index = path.find(marker)
        if index >= 0:
            path = path[index:]
            break
    else:
        path = Path(path).name
    return f"{match['function']} ({path})"


def available() -> bool:
    return shutil.which("py-spy") is not None


@contextlib.contextmanager
def sampled(pid: int | None, out: Path, rate: int = 50) -> Iterator[list[Profile]]:
    """Sample ``pid`` (and its children) while the block runs; the list holds the profile after.

    50 samples a second: enough over runs of seconds to minutes, and light enough not to skew
    what is measured (py-spy walks every thread's stack per sample; the worker's full read runs
    16 threads on the same 2 cores).
    """
    holder: list[Profile] = []
    if pid is None or not available():
        yield holder
        return
    recorder = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            str(rate),
            "--nonblocking",
            "--subprocesses",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield holder
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
        with contextlib.suppress(OSError):
            holder.append(parse_collapsed(out.read_text()))
