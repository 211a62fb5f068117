"""A private SMTP server for the dev stack and the tests: aiosmtpd, delivering into a Maildir.

The dev stack and the tests need a real relay that the system's mail (the notifier's and
Keycloak's) goes through, and a place where a person (or a test) reads what arrived. aiosmtpd
(the asyncio successor of the standard library's ``smtpd``, kept by the aio-libs project)
speaks SMTP; its ``Mailbox`` handler writes every message it accepts into a Maildir
(``<run_dir>/maildir/new/``, one RFC 5322 file per message, readable by any mail client or
``less``). It listens on 127.0.0.1 only, on a free port, without TLS or authentication: that
is allowed only with ``IACS_ENVIRONMENT=development`` (``iacs.settings``); a deployment names
its operator's relay with ``IACS_MAIL__*``.

It runs in the launching process (a thread with its own event loop), so ``stop()`` and
``start()`` take the relay away and bring it back on the same port: the tests' "relay down".
Given ``tls`` (``iacs.stack.tls``) and a ``login``, it behaves like an operator's relay:
STARTTLS required before anything else, then SMTP AUTH with that user name and password; the
tests use it to check the production path of ``iacs.mailer``.
"""

from __future__ import annotations

import email
import email.policy
import hmac
import mailbox
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from iacs.settings import MailSettings
from iacs.stack.process import StopsOnExit, free_port, port_open
from iacs.stack.tls import TlsFiles

__all__ = ["SmtpInstance", "start_smtp"]

HOST = "127.0.0.1"
FROM_ADDRESS = "IACS development <iacs@iacs.test>"


@dataclass
class SmtpInstance(StopsOnExit):
    """A running aiosmtpd that writes what it receives into ``maildir``."""

    run_dir: Path
    port: int
    host: str = HOST
    tls: TlsFiles | None = None
    login: tuple[str, str] | None = field(default=None, repr=False)
    """(user name, password) SMTP AUTH requires, after STARTTLS; None: no authentication."""
    _controller: Controller | None = field(default=None, repr=False)

    @property
    def maildir(self) -> Path:
        """Where the messages are (``new/`` holds one file per message)."""
        return self.run_dir / "maildir"

    def start(self) -> SmtpInstance:
        """Listen (again) on ``port``; a no-op when already running."""
        if self._controller is None:
            options: dict[str, object] = {}
            if self.tls is not None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
                options |= {"tls_context": context, "require_starttls": True}
            if self.login is not None:
                options |= {
                    "authenticator": self._authenticate,
                    "auth_required": True,
                    "auth_require_tls": self.tls is not None,
                }
            controller = Controller(
                Mailbox(self.maildir),
                hostname=self.host,
                port=self.port,
                ready_timeout=10,
                **options,  # type: ignore[arg-type]  # the SMTP keywords Controller passes on
            )
            controller.start()
            self._controller = controller
        return self

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        """SMTP AUTH (PLAIN or LOGIN) against ``login``, compared in constant time."""
        del server, session, envelope, mechanism
        if self.login is None or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self.login
        good = hmac.compare_digest(data.login, user.encode()) and hmac.compare_digest(
            data.password, password.encode()
        )
        return AuthResult(success=good, handled=False)

    def stop(self) -> None:
        """Stop listening (the messages already received stay in the Maildir)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None and port_open(self.host, self.port)

    def mail_settings(self) -> MailSettings:
        """``MailSettings`` for a development client of this server (no TLS, no password)."""
        return MailSettings(
            host=self.host, port=self.port, starttls=False, from_address=FROM_ADDRESS
        )

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first."""
        box = mailbox.Maildir(str(self.maildir), create=True)
        found = []
        for key in box.iterkeys():
            path = self.maildir / ("new" if (self.maildir / "new" / key).exists() else "cur") / key
            with path.open("rb") as handle:
                message = email.message_from_binary_file(handle, policy=email.policy.default)
            found.append((path.stat().st_mtime_ns, key, message))
        return [message for _, _, message in sorted(found, key=lambda item: item[:2])]

    def clear(self) -> None:
        """Remove every message (between tests)."""
        box = mailbox.Maildir(str(self.maildir), create=True)
        box.clear()


def start_smtp(
    run_dir: Path,
    *,
    port: int | None = None,
    tls: TlsFiles | None = None,
    login: tuple[str, str] | None = None,
) -> SmtpInstance:
    """Start aiosmtpd on 127.0.0.1 (a free port unless given), delivering into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(str(run_dir / "maildir"), create=True)
    instance = SmtpInstance(run_dir=run_dir, port=port or free_port(HOST), tls=tls, login=login)
    return instance.start()
