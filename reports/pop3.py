"""The one place that talks POP3: a team's report mailbox on a server that only offers POP3.

The server is reached exactly like an IMAP one (`reports/mailserver.py`: the host screened,
the TCP connection to a screened address, TLS verified for the host name, the password never
sent without TLS unless the mailbox explicitly allows it): implicit TLS (usually port 995) or
STLS (RFC 2595, usually port 110). poplib does the protocol; it is handed the connected,
verified socket (`_PinnedPOP3`) instead of connecting by itself with the system resolver.

Login, in this order of preference: USER/PASS where offered (CAPA lists USER, or the server
has no CAPA at all: RFC 2449 4); else SASL PLAIN (AUTH PLAIN, RFC 5034) where CAPA offers it;
else APOP where the greeting carries a timestamp. No other SASL mechanism is supported.

Listing needs UIDL (the server's unique ids): without them mailsec could not tell a message it
has stored from a new one, so a server without UIDL is refused with a message saying so.

Sizes: LIST gives each message's size, and a message over the limit is not retrieved at all;
RETR is read line by line and, should a server understate a size, what passes the limit is
read and dropped, never held. Nothing is deleted until QUIT: DELE only marks, and a connection
that ends without QUIT deletes nothing (RFC 1939 6).
"""

import base64
import contextlib
import poplib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.utils.translation import ngettext

from domains import net
from reports.mailserver import (
    IMPLICIT,
    PLAIN,
    STARTTLS,
    Connector,
    MailboxError,
    ServerSettings,
    Step,
    without_password,
)
from reports.parsing.streams import size_text

LINE_MAX = 1 << 20  # poplib's own 2048 is too short for some report mails' lines
HEAD_MAX = 64 * 1024  # the most of a refused message's header kept (TOP n 0)
UNIQUE_ID = re.compile(r"^[\x21-\x7e]{1,70}$")  # RFC 1939 7
LINE_BREAKS = set("\r\n\x00")
EOF = "-ERR EOF"  # what poplib raises when the server closed the connection
T = TypeVar("T")


class _LineTooLong(poplib.error_proto):
    """The server sent a line longer than LINE_MAX: the rest of its answer cannot be read."""


@dataclass(frozen=True)
class Listed:
    """A message the server lists: its number in this session, unique id and size."""

    number: int
    uidl: str
    size: int


class _PinnedPOP3(poplib.POP3):
    """poplib over a socket already connected (and, for implicit TLS, verified) by us.

    `host` stays the host name: STLS verifies the certificate against it."""

    def __init__(self, host: str, port: int, sock: socket.socket):
        self._pinned = sock
        super().__init__(host, port)  # reads the greeting

    def _create_socket(self, timeout=None) -> socket.socket:
        return self._pinned

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(LINE_MAX + 1)
        if len(line) > LINE_MAX:
            raise _LineTooLong(f"a line longer than {LINE_MAX:,} bytes")
        if not line:
            raise poplib.error_proto(EOF)
        octets = len(line)
        line = line[:-1] if line.endswith(b"\n") else line
        return (line[:-1] if line.endswith(b"\r") else line), octets

    def bounded(self, command: str, limit: int) -> tuple[bytes | None, int]:
        """A multi-line answer (RETR, TOP) and its size; None instead of the bytes when they
        pass `limit` (the rest is read and dropped, so the session goes on)."""
        self._shortcmd(command)
        lines, size = [], 0
        while True:
            line, _ = self._getline()
            if line == b".":
                break
            line = line[1:] if line.startswith(b".") else line  # byte-stuffing (RFC 1939 3)
            size += len(line) + 2
            if size <= limit:
                lines.append(line)
            elif lines:
                lines = []
        if size > limit:
            return None, size
        return b"".join(line + b"\r\n" for line in lines), size


def _server_text(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).removeprefix("-ERR").strip() or type(exc).__name__


def _failure(exc: Exception, host: str, timeout: float, command: str) -> MailboxError:
    """The MailboxError for an exception of one POP3 exchange; the server's -ERR is a
    "protocol" error with what it said."""
    if isinstance(exc, TimeoutError):
        return MailboxError("timeout", f"{host} did not answer {command} within {timeout:g} s")
    if isinstance(exc, _LineTooLong):
        return MailboxError("protocol", f"{host} sent {exc.args[0]} at {command}")
    if isinstance(exc, poplib.error_proto) and exc.args and exc.args[0] != EOF:
        return MailboxError("protocol", f"{host} refused {command}: {_server_text(exc)}")
    reason = getattr(exc, "strerror", None) or "the server closed the connection"
    return MailboxError("protocol", f"connection to {host} lost at {command}: {reason}")


class _Connector(Connector):
    """Opening a POP3 session, one stage at a time, so test_connection can report each."""

    def __init__(self, server: ServerSettings):
        super().__init__(server)
        self.session: Pop3Session | None = None  # once logged in
        self.client: _PinnedPOP3 | None = None
        self._capabilities: dict[str, list[str]] | None = None

    def secure(self) -> str:
        """TLS as the mailbox asks, and the server's greeting."""
        mode = self.server.tls_mode
        if mode == IMPLICIT:
            self.implicit_tls()
        self._greet()
        if mode == STARTTLS:
            self._stls()
        if mode == PLAIN:
            return "none: plaintext is explicitly allowed for this mailbox"
        return f"{self.client.sock.version()}, certificate valid for {self.host}"

    def _greet(self) -> None:
        sock, where = self.take_socket(), self.where()
        try:
            self.client = _PinnedPOP3(self.host, self.server.port, sock)
        except TimeoutError:
            sock.close()
            raise MailboxError(
                "timeout", f"{where} sent no POP3 greeting within {self.server.timeout:g} s"
            ) from None
        except (poplib.error_proto, OSError) as exc:
            sock.close()
            raise MailboxError(
                "protocol", f"{where} did not greet as a POP3 server: {_server_text(exc)}"
            ) from None

    def capabilities(self) -> dict[str, list[str]]:
        """CAPA's answer, {} from a server without CAPA; asked again after STLS (RFC 2595 4)."""
        if self._capabilities is None:
            try:
                self._capabilities = self.client.capa()
            except poplib.error_proto as exc:
                if exc.args and exc.args[0] == EOF:
                    raise _failure(exc, self.host, self.server.timeout, "CAPA") from None
                self._capabilities = {}
            except OSError as exc:
                raise _failure(exc, self.host, self.server.timeout, "CAPA") from None
        return self._capabilities

    def _stls(self) -> None:
        where = f"{self.host} port {self.server.port}"
        if "STLS" not in self.capabilities():
            raise self.no_starttls("STLS", 995)
        try:
            self.client.stls(net.tls_context())
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] == EOF:
                raise MailboxError("protocol", f"{where} closed the connection at STLS") from None
            raise MailboxError("tls", f"{where} refused STLS: {_server_text(exc)}") from None
        except OSError as exc:
            raise self.starttls_failure(exc) from None
        self._capabilities = None

    def login(self) -> str:
        """USER/PASS, AUTH PLAIN or APOP (see the module docstring); then the session is
        ready (`self.session`)."""
        user, password = self.server.username, self.server.password
        if LINE_BREAKS & set(user + password):
            # A POP3 command is one line: they would end it, and start another.
            raise MailboxError(
                "login", "the user name or password contains a line break, which POP3 cannot send"
            )
        capabilities = self.capabilities()
        sasl = [m.upper() for m in capabilities.get("SASL", [])]
        if not capabilities or "USER" in capabilities:
            how, attempt = "USER/PASS", lambda: self._user_pass(user, password)
        elif "PLAIN" in sasl:
            how, attempt = "SASL PLAIN", lambda: self._auth_plain(user, password)
        elif self.client.timestamp.match(self.client.welcome):
            how, attempt = "APOP", lambda: self.client.apop(user, password)
        else:
            offered = ", ".join(sasl) or "none"
            raise MailboxError(
                "login",
                f"{self.host} offers no login mailsec supports (USER/PASS, SASL PLAIN or APOP; "
                f"its SASL mechanisms: {offered})",
            )
        try:
            attempt()
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] == EOF:
                raise _failure(exc, self.host, self.server.timeout, "login") from None
            text = f"login refused for {user}: {_server_text(exc)}"
            raise MailboxError("login", without_password(text, password)) from None
        except OSError as exc:
            raise _failure(exc, self.host, self.server.timeout, "login") from None
        self.session = Pop3Session(self.client, self.server, self.host)
        self.client = None  # the session closes it now
        return f"logged in as {user} ({how})"

    def _user_pass(self, user: str, password: str) -> None:
        self.client.user(user)
        self.client.pass_(password)

    def _auth_plain(self, user: str, password: str) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
        self.client._shortcmd(f"AUTH PLAIN {token}")

    def abandon(self) -> None:
        """Close whatever a failed attempt left open (never with QUIT)."""
        self.close_socket()
        if self.client is not None:
            with contextlib.suppress(Exception):  # already closed: nothing left to do
                self.client.close()
            self.client = None


class Pop3Session:
    """A logged-in POP3 connection. Use `Pop3Session.open(...)` as a context manager; leaving
    it without `quit()` drops the connection, which deletes nothing."""

    def __init__(self, client: _PinnedPOP3, server: ServerSettings, host: str):
        self._client = client
        self.server = server
        self.host = host
        self._broken = False
        self._closed = False

    @classmethod
    def open(cls, server: ServerSettings) -> "Pop3Session":
        """Connect, secure and log in; MailboxError says at which stage it failed."""
        connector = _Connector(server)
        try:
            connector.resolve()
            connector.connect()
            connector.secure()
            connector.login()
            return connector.session
        finally:
            connector.abandon()

    def __enter__(self) -> "Pop3Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def listing(self) -> list[Listed]:
        """Every message with its unique id (UIDL) and size (LIST), in server order."""
        try:
            ids = self._call(self._client.uidl, "UIDL")[1]
        except MailboxError as exc:
            if self._broken:
                raise
            raise MailboxError(
                "protocol",
                f"{self.host} does not give unique message ids (UIDL): without them mailsec "
                "cannot tell a message it has stored from a new one. Use IMAP if the provider "
                f"offers it, or ask them to enable UIDL ({exc})",
            ) from None
        sizes = dict(_pairs(self._call(self._client.list, "LIST")[1], self.host, "LIST"))
        found, seen = [], set()
        for number, uidl in _pairs(ids, self.host, "UIDL"):
            if not UNIQUE_ID.match(uidl) or uidl in seen:
                raise MailboxError("protocol", f"{self.host} gave an unusable unique id {uidl!r}")
            seen.add(uidl)
            found.append(Listed(number, uidl, int(sizes.get(number, "0"))))
        return found

    def retrieve(self, number: int, limit: int) -> tuple[bytes | None, int]:
        """The whole message and its size; None instead of the bytes when it passes `limit`."""
        return self._call(lambda: self._client.bounded(f"RETR {number}", limit), "RETR")

    def head(self, number: int) -> bytes:
        """The message's header (TOP n 0), at most HEAD_MAX bytes; b"" from a server without
        TOP (it is optional) or when it is longer."""
        try:
            data, _ = self._call(lambda: self._client.bounded(f"TOP {number} 0", HEAD_MAX), "TOP")
        except MailboxError:
            if self._broken:
                raise
            return b""
        return data or b""

    def delete(self, numbers: list[int]) -> None:
        """Mark messages deleted; the server deletes them at QUIT only."""
        for number in numbers:
            self._call(lambda n=number: self._client.dele(n), "DELE")

    def quit(self) -> None:
        """QUIT: the server deletes the marked messages. A MailboxError here means the
        deletions may not have happened (the next pass deletes what it still finds)."""
        self._call(self._client.quit, "QUIT")
        self._closed = True

    def close(self) -> None:
        """Drop the connection without QUIT (nothing marked is deleted); never raises."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._client.close()

    def _call(self, function: Callable[[], T], command: str) -> T:
        """Run one POP3 exchange; failures become MailboxError (see _failure). A timeout or a
        lost connection marks the session broken, so that nothing more is sent on it."""
        if self._closed or self._broken:
            raise MailboxError("protocol", f"the connection to {self.host} is already closed")
        try:
            return function()
        except (poplib.error_proto, OSError) as exc:
            self._broken = (
                not isinstance(exc, poplib.error_proto)
                or isinstance(exc, _LineTooLong)
                or exc.args[:1] == (EOF,)
            )
            raise _failure(exc, self.host, self.server.timeout, command) from None


def _pairs(lines: list[bytes], host: str, command: str) -> list[tuple[int, str]]:
    """The "number value" lines of a UIDL or LIST answer."""
    pairs = []
    for line in lines:
        parts = line.decode("ascii", "replace").split()
        if len(parts) < 2 or not parts[0].isdigit():
            raise MailboxError("protocol", f"{host} answered {command} with {line[:80]!r}")
        pairs.append((int(parts[0]), parts[1]))
    return pairs


def test_connection(server: ServerSettings) -> list[Step]:
    """DNS, TCP, TLS, login, then the listing (UIDL and LIST, nothing retrieved or deleted).
    Stops at the first failure."""
    connector = _Connector(server)
    steps: list[Step] = []
    try:
        connector.check_policy()
    except MailboxError as exc:
        return [Step("TLS", False, str(exc), exc.stage)]
    stages = (
        ("DNS", connector.resolve),
        ("TCP", connector.connect),
        ("TLS", connector.secure),
        ("Login", connector.login),
    )
    try:
        for name, stage in stages:
            try:
                steps.append(Step(name, True, stage()))
            except MailboxError as exc:
                steps.append(Step(name, False, str(exc), exc.stage))
                return steps
        with connector.session as session:
            try:
                listed = session.listing()
                session.quit()
            except MailboxError as exc:
                return [*steps, Step("Messages", False, str(exc), exc.stage)]
    finally:
        connector.abandon()
    count, size = len(listed), sum(m.size for m in listed)
    found = f"{count} {ngettext('message', 'messages', count)} ({size_text(size)}), unique ids"
    return [*steps, Step("Messages", True, found)]


test_connection.__test__ = False  # not a test, whatever its name says to pytest
