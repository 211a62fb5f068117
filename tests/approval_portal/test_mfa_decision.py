"""``approval_portal.mfa``: which tokens passed a second factor, and whom that is asked of."""

from __future__ import annotations

import pytest

from approval_portal.mfa import SecondFactorRequired, mfa_required, passed_mfa, require_mfa


@pytest.mark.parametrize(
    ("amr", "passed"),
    [
        (["pwd", "otp"], True),
        (["otp"], True),
        (["hwk"], True),
        ("otp", True),
        (["pwd"], False),
        ([], False),
        (None, False),
        ({"otp": 1}, False),
        ([1, None], False),
        (["OTP"], False),
    ],
)
def test_passed_mfa_reads_the_amr_claim(amr, passed: bool) -> None:
    claims = {} if amr is None else {"amr": amr}
    assert passed_mfa(claims) is passed


def test_only_those_marked_must_pass_it() -> None:
    assert mfa_required({"iacs_mfa": "required"})
    assert mfa_required({"iacs_mfa": ["required"]})
    assert not mfa_required({})
    assert not mfa_required({"iacs_mfa": "no"})
    require_mfa({"amr": ["pwd"]})  # an End User: no second factor asked
    require_mfa({"iacs_mfa": "required", "amr": ["pwd", "otp"]})
    with pytest.raises(SecondFactorRequired):
        require_mfa({"iacs_mfa": "required", "amr": ["pwd"]})
    with pytest.raises(SecondFactorRequired):
        require_mfa({"iacs_mfa": "required"})
