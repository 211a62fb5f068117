"""``python -m bench.sync_once OUT.json``: one ``sync.main.run_once`` in a process of its own.

Run by the benchmark so that the reconcile's time excludes the interpreter's start and its
memory is its own. Writes ``{"seconds", "writes", "stages", "summary"}`` to ``OUT.json``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from iacs.settings import load_settings
from sync.main import run_once


def _as_dict(value: Any) -> dict[str, Any]:
    if hasattr(value, "summary") and callable(value.summary):
        return dict(value.summary())
    if isinstance(value, dict):
        return value
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return {"text": str(value)}


def main(out: Path) -> None:
    settings = load_settings()
    started = time.perf_counter()
    result = run_once(settings)
    seconds = time.perf_counter() - started
    summary = _as_dict(result)
    writes = summary.get("writes")
    if writes is None and hasattr(result, "report"):
        writes = result.report.total_writes
    stages = summary.get("seconds") if isinstance(summary.get("seconds"), dict) else {}
    out.write_text(
        json.dumps(
            {"seconds": seconds, "writes": writes, "stages": stages, "summary": summary},
            default=str,
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
