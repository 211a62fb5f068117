"""Bulk onboarding and export (issue 10, item 5) over the real slapd, through the service.

A CSV with good and bad lines: the dry run reports each line and writes nothing; the import
carries out the good ones (each through the portal's own service calls, so ORG-2, ORG-7, ORG-1
and UGA-2 apply as in the portal) and refuses the bad ones, changing nothing for them; a second
run changes nothing at all. The export lists every role with its certification dates, with
formula-looking cells neutralized.
"""

from __future__ import annotations

import csv
import io

import pytest

from iacs.domain import EntityStatus, Membership, RequestStatus, Role, ScopeKind
from iacs.service import Forbidden, InvalidInput
from iacs.service.onboarding import COLUMNS, export_roles, import_onboarding, neutralize, template

pytestmark = pytest.mark.servers

HEADER = ",".join(COLUMNS)
GOOD_AND_BAD = "\r\n".join(
    [
        HEADER,
        "organization,12-3456789,Lakeside General,hospital,sofia,1 Main St,,,",  # 2 created
        "organization,98-7654321,Wheels Medical,dmepos,dora,,,,",  # 3 ORG-7
        "organization,123456789,Lakeside Again,hospital,olga,,,,",  # 4 ORG-2 (same number)
        "user_group,12-3456789,,,,,,Billing,uma",  # 5 filed, waits for the SO (UGA-2)
        "organization,11-1111111,Ghost Clinic,hospital,nobody,,,,",  # 6 no such person
        "organization,12-34,Short Number,hospital,sofia,,,,",  # 7 malformed identifier
        "hospital,22-2222222,No Record,hospital,sofia,,,,",  # 8 unknown record
        "user_group,98-7654321,,,,,,Claims,uma",  # 9 ORG-1: that organization is not registered
        "organization,33-3333333,@Home Health,home_health_agency,hana,,,,",  # 10 created
        "",
    ]
)


def _outcomes(report) -> dict[int, tuple[str, str]]:
    return {line.line: (line.outcome, line.rule) for line in report.lines}


def _state(world) -> tuple:
    """What the directory holds that an import could change."""
    directory = world.service.directory
    orgs = sorted((o.id, o.status.value) for o in directory.find_organizations(limit=1000))
    requests = sorted(
        (r.kind.value, r.requester, r.organization_id, r.group_id, r.status.value)
        for r in directory.find_requests(limit=1000)
    )
    return orgs, requests


def _audit(world, action: str) -> list:
    records, _ = world.service.directory.page_audit(action=action, limit=1000)
    return records


def test_a_csv_with_good_and_bad_lines_dry_run_then_import_then_again(world) -> None:
    world.people("sofia", "dora", "olga", "uma", "hana")
    before = _state(world)

    dry = import_onboarding(world.service, "helpdesk", GOOD_AND_BAD, dry_run=True)
    assert _outcomes(dry) == {
        2: ("would create", ""),
        3: ("refused", "ORG-7"),
        4: ("refused", "ORG-2"),  # line 2 would register that organization first
        5: ("would file", ""),
        6: ("refused", ""),
        7: ("refused", ""),
        8: ("refused", ""),
        9: ("refused", "ORG-1"),
        10: ("would create", ""),
    }, str(dry)
    assert "line 2" in dry.lines[3].detail  # the group waits for line 2's organization
    assert "no person 'nobody'" in dry.lines[4].detail
    assert "9-digit" in dry.lines[5].detail
    assert _state(world) == before
    assert _audit(world, "import:organization") == []

    done = import_onboarding(world.service, "helpdesk", GOOD_AND_BAD, dry_run=False)
    assert _outcomes(done) == {
        2: ("created", ""),
        3: ("refused", "ORG-7"),
        4: ("refused", "ORG-2"),
        5: ("filed", ""),
        6: ("refused", ""),
        7: ("refused", ""),
        8: ("refused", ""),
        9: ("refused", "ORG-1"),
        10: ("created", ""),
    }, str(done)
    directory = world.service.directory
    lakeside = directory.get_organization("org-123456789")
    assert lakeside is not None and lakeside.status is EntityStatus.ACTIVE
    so = Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, "org-123456789")
    assert directory.members_of(so) == {"sofia"}
    assert directory.get_organization("org-987654321") is None  # refused lines wrote nothing
    (uga_request,) = directory.find_requests(requester="uma")
    assert uga_request.status is RequestStatus.PENDING  # the SO decides it (UGA-2)
    assert "UGA-2" in done.lines[3].detail
    decisions = [r for r in _audit(world, "decide") if r.actor == "helpdesk"]
    assert len(decisions) >= 2  # the two registrations, decided as the help desk (ORG-3)
    imported = _audit(world, "import:organization")
    assert {r.actor for r in imported} == {"helpdesk"}
    assert sorted(r.outcome for r in imported) == ["ok", "ok", *["refused"] * 4]  # 3, 4, 6, 7
    after = _state(world)

    again = import_onboarding(world.service, "helpdesk", GOOD_AND_BAD, dry_run=False)
    assert [line.line for line in again.lines if line.outcome == "unchanged"] == [2, 5, 10]
    assert {line.outcome for line in again.lines} == {"unchanged", "refused"}
    assert _state(world) == after  # idempotent: nothing changed the second time
    dry_again = import_onboarding(world.service, "helpdesk", GOOD_AND_BAD, dry_run=True)
    assert _outcomes(dry_again)[2] == ("unchanged", "")


def test_only_the_help_desk_imports_and_exports(world) -> None:
    world.people("sofia")
    world.organization("sofia")
    with pytest.raises(Forbidden) as refused:
        import_onboarding(world.service, "sofia", template(), dry_run=True)
    assert refused.value.rule == "ORG-3"
    with pytest.raises(Forbidden):
        export_roles(world.service, "sofia")
    assert [r.outcome for r in _audit(world, "import")] == ["denied"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name,identifier\r\nx,123456789\r\n",  # no record column
        f"{HEADER},password\r\n",  # an unknown column
        f"{HEADER},record\r\n",  # a column twice
        f'{HEADER}\r\norganization,"123456789\r\n',  # an unclosed quote
        "record,identifier\x00\r\n",
    ],
)
def test_a_file_that_is_not_the_import_csv_is_refused_whole(world, text: str) -> None:
    before = _state(world)
    with pytest.raises(InvalidInput):
        import_onboarding(world.service, "helpdesk", text, dry_run=False)
    assert _state(world) == before


def test_a_line_naming_the_help_desk_as_its_so_is_refused_before_anything_is_filed(world) -> None:
    """DEC-1 (nobody decides their own request), asked of the policy before the line is filed:
    the line changes nothing, in the dry run and for real."""
    text = f"{HEADER}\r\norganization,123456789,Own,hospital,helpdesk,,,,\r\n"
    for dry_run in (True, False):
        (line,) = import_onboarding(world.service, "helpdesk", text, dry_run=dry_run).lines
        assert (line.outcome, line.rule) == ("refused", "DEC-1")
    assert world.service.directory.get_organization("org-123456789") is None
    assert world.service.directory.find_requests(requester="helpdesk") == []


def test_a_line_with_more_cells_than_columns_is_refused_alone(world) -> None:
    world.people("sofia")
    text = f"{HEADER}\r\norganization,123456789,A,hospital,sofia,,,,,extra\r\n"
    (line,) = import_onboarding(world.service, "helpdesk", text, dry_run=False).lines
    assert line.outcome == "refused" and "more cells" in line.detail
    assert world.service.directory.get_organization("org-123456789") is None


def test_export_lists_roles_with_certification_dates_and_neutralizes_formulas(world) -> None:
    world.people("sofia", "hana")
    import_onboarding(
        world.service,
        "helpdesk",
        f"{HEADER}\r\n"
        "organization,12-3456789,Lakeside General,hospital,sofia,,,,\r\n"
        "organization,33-3333333,=HYPERLINK(1),home_health_agency,hana,,,,\r\n",
        dry_run=False,
    )
    rows = list(csv.DictReader(io.StringIO(export_roles(world.service, "helpdesk"))))
    by_org = {row["organization_id"]: row for row in rows}
    lakeside = by_org["org-123456789"]
    assert lakeside["role"] == Role.SECURITY_OFFICIAL.value and lakeside["username"] == "sofia"
    assert lakeside["approved_by"] == "helpdesk"
    assert lakeside["certified_at"] and lakeside["certification_due"] > lakeside["certified_at"]
    assert by_org["org-333333333"]["organization_name"] == "'=HYPERLINK(1)"
    assert [r.actor for r in _audit(world, "export")] == ["helpdesk"]


def test_neutralize_quotes_every_formula_start() -> None:
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralize(cell) == "'" + cell
    assert neutralize("Lakeside") == "Lakeside"
