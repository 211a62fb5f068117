"""``IACS_MAIL__*`` and ``IACS_SCHEDULE__*``: validated at start, closed outside development."""

from __future__ import annotations

from pathlib import Path

import pytest

from iacs.settings import MailSettings, SettingsError, known_environment_variables, load_settings


def test_sec_a_relay_without_starttls_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IACS_MAIL__HOST", "relay.example.test")
    monkeypatch.setenv("IACS_MAIL__FROM_ADDRESS", "IACS <iacs@example.test>")
    monkeypatch.setenv("IACS_MAIL__STARTTLS", "false")
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="IACS_MAIL__STARTTLS"):
        load_settings(client=False)
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    assert load_settings(client=False).mail.starttls is False


def test_a_relay_needs_its_from_address_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    monkeypatch.setenv("IACS_MAIL__HOST", "relay.example.test")
    with pytest.raises(SettingsError, match="IACS_MAIL__FROM_ADDRESS"):
        load_settings(client=False)


def test_the_smtp_password_comes_from_a_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IACS_MAIL__PASSWORD_FILE"):
        MailSettings(host="relay", username="iacs")
    with pytest.raises(ValueError, match="does not exist"):
        MailSettings(host="relay", username="iacs", password_file=tmp_path / "missing")
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-from-a-file\n")
    mail = MailSettings(host="relay", username="iacs", password_file=secret)
    assert mail.password() == "s3cret-from-a-file"
    assert "s3cret" not in repr(mail)


@pytest.mark.parametrize("bad", ["not an address", "IACS <iacs@example.test>\r\nBcc: x@y.z"])
def test_a_bad_from_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="e-mail address"):
        MailSettings(from_address=bad)


def test_schedule_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    monkeypatch.setenv("IACS_SCHEDULE__REMINDER_DAYS", "[7, 30, 14]")
    monkeypatch.setenv("IACS_SCHEDULE__INTERVAL_SECONDS", "600")
    schedule = load_settings().schedule
    assert schedule.reminder_days == [30, 14, 7]
    assert schedule.interval_seconds == 600
    monkeypatch.setenv("IACS_SCHEDULE__REMINDER_DAYS", "[0]")
    with pytest.raises(SettingsError, match="IACS_SCHEDULE__REMINDER_DAYS"):
        load_settings()


def test_compose_can_pass_every_mail_setting() -> None:
    names = known_environment_variables()
    for field in ("HOST", "PORT", "STARTTLS", "USERNAME", "PASSWORD_FILE", "FROM_ADDRESS"):
        assert f"IACS_MAIL__{field}" in names
