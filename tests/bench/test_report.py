"""The report says what was measured, what was not and why, and never invents a number."""

from __future__ import annotations

from bench.report import MEASURED, Measurement, Results, write_results


def results() -> Results:
    measured = Measurement(
        key="propagation",
        title="Propagation",
        target="p95 ≤ 1 s",
        status=MEASURED,
        result="p95 0.420 s",
        met=True,
        numbers={"p50_ms": 300.0, "p95_ms": 420.0, "p99_ms": 480.0},
        samples=[0.2, 0.3, 0.31, 0.42, 0.48],
    )
    waiting = Measurement.not_measured(
        "revocation", "Revocation", "p95 ≤ 2 s", "the portal's revocation API has not landed"
    )
    failed = Measurement(key="cold", title="Cold projection").fail("Keycloak answered 500")
    return Results(
        size="ci",
        command="iacs bench --size ci",
        machine={"nproc": 2, "memory_gib": 24.0, "cpu_model": "Test CPU"},
        versions={"slapd": "2.5.13"},
        community={"people": 300},
        measurements=[measured, waiting, failed],
        memory={"portal": 80.5},
    )


def test_markdown_table_json_and_plots_are_written(tmp_path):
    written = write_results(results(), tmp_path / "out", tmp_path / "docs" / "benchmarks.md")
    page = written["markdown"].read_text()
    assert "iacs bench --size ci" in page
    assert "| nproc | 2 |" in page and "Test CPU" in page
    assert "| Propagation | p95 0.420 s | p95 ≤ 1 s | yes |" in page
    assert "not measured yet: the portal's revocation API has not landed" in page
    assert "failed: Keycloak answered 500" in page
    assert (tmp_path / "docs" / "benchmarks" / "propagation.png").stat().st_size > 0
    assert "](benchmarks/propagation.png)" in page
    again = Results.from_json(written["json"].read_text())
    assert again.get("revocation").status == "not measured yet"
    assert again.get("propagation").samples == [0.2, 0.3, 0.31, 0.42, 0.48]
