"""Structured logs: one JSON object per line with the extra fields."""

from __future__ import annotations

import json
import logging

from sync.logs import JsonFormatter


def test_log_line_is_json_with_extra_fields() -> None:
    record = logging.LogRecord("sync.worker", logging.INFO, __file__, 1, "full run done", (), None)
    record.writes = 0
    record.plan = {"add_members": 0}
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "full run done" and line["level"] == "info"
    assert line["writes"] == 0 and line["plan"] == {"add_members": 0}
    assert line["logger"] == "sync.worker" and line["ts"].endswith("+00:00")
