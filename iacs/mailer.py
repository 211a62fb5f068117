"""Sending one notice through the SMTP relay of ``IACS_MAIL__*`` (standard library ``smtplib``).

Each message is plain text with an HTML alternative, and its ``Message-ID`` is derived from the
notice's id: the one case where a notice can go out twice (a process killed between the relay's
answer and the outbox's sent marker) gives the same Message-ID, which mail clients fold.
Outside development the conversation is upgraded with STARTTLS before anything is sent
(``iacs.settings`` refuses a relay without it), verified against ``IACS_MAIL__CA_FILE`` or the
system's trust store.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from iacs.domain import Notice
from iacs.settings import MailSettings

__all__ = ["SmtpMailer", "build_message"]


def build_message(notice: Notice, from_address: str) -> EmailMessage:
    """The RFC 5322 message of ``notice``: text/plain, with text/html as the alternative."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = notice.address
    message["Subject"] = notice.subject
    message["Date"] = formatdate(usegmt=True)
    domain = from_address.rsplit("@", 1)[-1].rstrip(">").strip() or "iacs"
    message["Message-ID"] = f"<{notice.id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-IACS-Notice"] = notice.kind
    message.set_content(notice.text)
    if notice.html:
        message.add_alternative(notice.html, subtype="html")
    return message


class SmtpMailer:
    """A new SMTP conversation per notice (notices are few; the relay may close idle ones)."""

    def __init__(self, settings: MailSettings) -> None:
        if not settings.host:
            raise ValueError("IACS_MAIL__HOST is not set")
        self.settings = settings
        self._password = settings.password()  # read at start: a missing secret fails now

    def send(self, notice: Notice) -> None:
        """Hand ``notice`` to the relay; ``smtplib``'s errors (``OSError``) when it fails."""
        settings = self.settings
        assert settings.host is not None
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.starttls:
                context = ssl.create_default_context(
                    cafile=str(settings.ca_file) if settings.ca_file else None
                )
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username and self._password is not None:
                smtp.login(settings.username, self._password)
            smtp.send_message(build_message(notice, settings.from_address))
