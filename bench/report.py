"""The benchmark's outputs: one JSON results file, a Markdown page with a table, and PNG plots.

Every measurement is a ``Measurement``: measured (with its numbers and whether it met its target),
failed (with the error), or not measured yet (with the reason). A number is never made up: a
measurement that could not run says so in the table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MEASURED = "measured"
FAILED = "failed"
NOT_MEASURED = "not measured yet"


@dataclass
class Measurement:
    """One benchmark result: what was measured, the numbers, the target and the verdict."""

    key: str
    title: str
    target: str = ""
    status: str = NOT_MEASURED
    reason: str = ""
    """Why a measurement failed or was not measured; empty when measured."""
    result: str = ""
    """The headline, as shown in the table (``p95 0.42 s``)."""
    met: bool | None = None
    """Whether the target was met (None: no target, or not measured)."""
    numbers: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def not_measured(cls, key: str, title: str, target: str, reason: str) -> Measurement:
        return cls(key=key, title=title, target=target, status=NOT_MEASURED, reason=reason)

    def fail(self, reason: str) -> Measurement:
        self.status, self.reason, self.met = FAILED, reason, None
        return self


@dataclass
class Results:
    """Everything one ``iacs bench`` run produced."""

    size: str
    command: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    community: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Measurement | None:
        return next((m for m in self.measurements if m.key == key), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> Results:
        data = json.loads(text)
        data["measurements"] = [Measurement(**m) for m in data.get("measurements", [])]
        return cls(**data)


# -- machine ---------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """nproc, memory, CPU model and OS of this machine (what the numbers depend on)."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": _load_average(),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a bench dependency
        info["memory_gib"] = None
    return info


def _load_average() -> str:
    """1/5/15-minute load: on a shared machine, other work competes for the same cores."""
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def software_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of slapd, Java and the Python packages the measurements go through."""
    versions: dict[str, str] = {}
    for package in ("ldap3", "python-keycloak", "flask", "requests"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["slapd"] = _first_match(["slapd", "-VV"], r"slapd ([0-9][^ ]*)", sbin=True)
    versions["java"] = _first_match(["java", "-version"], r'version "([^"]+)"')
    versions.update(extra or {})
    return versions


def _first_match(argv: list[str], pattern: str, sbin: bool = False) -> str:
    env = dict(os.environ)
    if sbin:
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/usr/local/sbin"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


# -- writing ---------------------------------------------------------------------------------


def write_results(results: Results, out_dir: Path, docs_path: Path) -> dict[str, Path]:
    """Write ``results.json`` into ``out_dir``, the plots beside ``docs_path`` and the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"results-{results.size}.json"
    json_path.write_text(results.to_json() + "\n", encoding="utf-8")
    plot_dir = docs_path.parent / docs_path.stem
    plots = write_plots(results, plot_dir)
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text(render_markdown(results, plots, docs_path.parent), encoding="utf-8")
    return {"json": json_path, "markdown": docs_path, **{f"plot:{k}": v for k, v in plots.items()}}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def render_markdown(results: Results, plots: dict[str, Path], base: Path) -> str:
    """The Markdown page: how to reproduce, the machine, the table, details, plots."""
    verdict = {True: "yes", False: "**no**", None: "-"}
    size_note = {
        "ci": "CI size (a few hundred people): checks that the benchmark works; the numbers "
        "say little about a real community. The full-size run (`iacs bench --size full`) "
        "writes this page again with 10,000 people.",
        "full": "Full size: a provider community of the issue's default size.",
    }.get(results.size, "")
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `iacs bench`; edit bench/report.py, not this file. -->",
        "",
        f"Size **{results.size}**. {size_note}",
        "",
        "Reproduce:",
        "",
        "```",
        results.command,
        "```",
        "",
        f"Run from {results.started_at} to {results.finished_at or '(unfinished)'}.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    machine = results.machine
    lines += [
        f"| nproc | {machine.get('nproc')} |",
        f"| memory | {machine.get('memory_gib')} GiB |",
        f"| CPU | {machine.get('cpu_model')} |",
        f"| OS | {machine.get('os')} |",
        f"| Python | {machine.get('python')} |",
        f"| load average at start (1/5/15 min) | {machine.get('load_average')} |",
        f"| load average at end | {machine.get('load_average_end', '-')} |",
    ]
    lines += [f"| {name} | {version} |" for name, version in sorted(results.versions.items())]
    lines += ["", "## Community", "", "| | |", "| --- | --- |"]
    lines += [
        f"| {name.replace('_', ' ')} | {value} |" for name, value in results.community.items()
    ]
    if results.setup:
        lines += ["", "Setup (not benchmarks, for scale):", ""]
        lines += [f"- {name.replace('_', ' ')}: {_fmt(v)}" for name, v in results.setup.items()]
    lines += [
        "",
        "## Results",
        "",
        "| measurement | result | target | met |",
        "| --- | --- | --- | --- |",
    ]
    for m in results.measurements:
        if m.status == MEASURED:
            result = m.result
        elif m.status == FAILED:
            result = f"failed: {_one_line(m.reason)}"
        else:
            result = f"not measured yet: {_one_line(m.reason)}"
        lines.append(f"| {m.title} | {result} | {m.target or '-'} | {verdict[m.met]} |")
    if results.memory:
        lines += ["", "## Memory (peak RSS)", "", "| process | peak RSS |", "| --- | --- |"]
        for name, value in results.memory.items():
            shown = f"{value:.0f} MiB" if isinstance(value, int | float) else str(value)
            lines.append(f"| {name} | {shown} |")
    lines += ["", "## Details", ""]
    for m in results.measurements:
        lines += [f"### {m.title}", ""]
        if m.status != MEASURED:
            lines += [f"{m.status.capitalize()}: {m.reason}", ""]
        if m.numbers:
            lines += ["| | |", "| --- | --- |"]
            lines += [f"| {key} | {_fmt(value)} |" for key, value in m.numbers.items()]
            lines.append("")
        lines += [f"- {note}" for note in m.notes]
        if m.notes:
            lines.append("")
        if m.key in plots:
            lines += [f"![{m.title}]({plots[m.key].relative_to(base).as_posix()})", ""]
    for key in ("comparison", "memory"):
        if key in plots:
            lines += [f"![{key}]({plots[key].relative_to(base).as_posix()})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_plots(results: Results, plot_dir: Path) -> dict[str, Path]:
    """PNG plots: a latency CDF per latency measurement, the bulk-rate comparison, memory."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a bench dependency
        return {}
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    for m in results.measurements:
        if m.status != MEASURED or len(m.samples) < 2:
            continue
        figure, axis = plt.subplots(figsize=(6, 3.2), dpi=100)
        ordered = sorted(m.samples)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axis.step([v * 1000 for v in ordered], fractions, where="post")
        for q in (50, 95, 99):
            value = m.numbers.get(f"p{q}_ms")
            if value is not None:
                axis.axvline(value, linestyle=":", color="grey")
                axis.annotate(f"p{q}", (value, 0.02), rotation=90, fontsize=8, color="grey")
        axis.set_xlabel("milliseconds")
        axis.set_ylabel("fraction ≤ x")
        axis.set_title(f"{m.title} (n={len(ordered)})", fontsize=10)
        axis.grid(alpha=0.3)
        figure.tight_layout()
        path = plot_dir / f"{m.key}.png"
        figure.savefig(path)
        plt.close(figure)
        plots[m.key] = path
    rates = [
        (m.title, m.numbers.get("people_per_second"))
        for m in results.measurements
        if m.status == MEASURED and m.numbers.get("people_per_second")
    ]
    if rates:
        figure, axis = plt.subplots(figsize=(6, 0.6 + 0.55 * len(rates)), dpi=100)
        axis.barh([name for name, _ in rates], [value for _, value in rates])
        axis.set_xlabel("people per second (higher is better)")
        axis.set_title("Bulk rates on the same directory", fontsize=10)
        axis.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        path = plot_dir / "comparison.png"
        figure.savefig(path)
        plt.close(figure)
        plots["comparison"] = path
    memory = {k: v for k, v in results.memory.items() if isinstance(v, int | float)}
    if memory:
        figure, axis = plt.subplots(figsize=(6, 0.6 + 0.5 * len(memory)), dpi=100)
        axis.barh(list(memory), list(memory.values()))
        axis.set_xlabel("peak RSS (MiB)")
        axis.set_title("Memory", fontsize=10)
        figure.tight_layout()
        path = plot_dir / "memory.png"
        figure.savefig(path)
        plt.close(figure)
        plots["memory"] = path
    return plots
