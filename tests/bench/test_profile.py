"""py-spy's collapsed stacks summarized per function, project code first."""

from __future__ import annotations

from bench.profile import parse_collapsed

HEAD = 'process 1:"python";thread (0x1);run (werkzeug/serving.py:10);'
ACCESS = "/work/main/iacs/service/access.py"
RAW = "\n".join(
    [
        f"{HEAD}decide ({ACCESS}:231);search (ldap3/core/connection.py:700) 6",
        f"{HEAD}decide ({ACCESS}:240) 2",
        f"{HEAD}verify (/work/main/approval_portal/auth.py:99) 2",
        "garbage line",
    ]
)


def test_inclusive_and_self_samples_per_function():
    profile = parse_collapsed(RAW)
    assert profile.samples == 10
    assert profile.inclusive["decide (iacs/service/access.py)"] == 8
    assert profile.self_time["search (connection.py)"] == 6
    top = dict(profile.top(5))
    assert top == {
        "decide (iacs/service/access.py)": 0.8,
        "verify (approval_portal/auth.py)": 0.2,
    }
    assert profile.top_self(1) == [("search (connection.py)", 0.6)]
    assert "10 on-CPU samples" in profile.notes("portal")[0]


def test_no_samples_no_notes():
    assert parse_collapsed("").notes("portal") == []
