"""The CI-size benchmark, end to end on the real servers, so that the benchmark code keeps working.

It checks that every measurement ran or says why it did not, never that a target was met: the
numbers of a few hundred people on a shared CI machine mean nothing (docs/benchmarks.md holds the
full-size run). About 3-4 minutes on an idle 2-core machine, mostly Keycloak's start and the
realm's application; the timeout leaves room for a loaded one.
"""

from __future__ import annotations

import json

import pytest

from bench.report import FAILED, MEASURED, NOT_MEASURED
from bench.run import TITLES, run_benchmarks

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]


def test_ci_size_benchmark_runs_end_to_end(tmp_path):
    results = run_benchmarks("ci", tmp_path / "out", docs_path=tmp_path / "docs" / "benchmarks.md")

    saved = json.loads((tmp_path / "out" / "results-ci.json").read_text())
    assert saved["community"]["people"] == 300
    assert {m["key"] for m in saved["measurements"]} == set(TITLES)
    failed = {m.key: m.reason for m in results.measurements if m.status == FAILED}
    assert not failed, failed
    for measurement in results.measurements:
        assert measurement.status in (MEASURED, NOT_MEASURED)
        if measurement.status == NOT_MEASURED:
            assert measurement.reason  # it says why
    anchors = [results.get("anchor_ldap_full_sync"), results.get("anchor_admin_api")]
    assert all(m.status == MEASURED for m in anchors)
    assert results.get("anchor_ldap_full_sync").numbers["users_in_realm"] == 300
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "| nproc |" in page and "iacs bench --size ci" in page
    if results.get("no_change").status == MEASURED:
        assert results.get("no_change").numbers["admin_writes_counted_by_worker"] == 0
