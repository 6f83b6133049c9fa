"""The one place that talks IMAP: a team's DMARC report mailbox.

Reaching the server (screening, TCP, TLS verified for the host name, the plaintext policy)
is shared with the POP3 seam: `reports/mailserver.py`.

IMAPClient does the protocol (folder names in modified UTF-7, response parsing, MOVE,
UIDPLUS); it is handed the connected, verified socket (`_PinnedClient`) instead of connecting
by itself, since it would resolve the name with the system resolver.

Every failure is a `MailboxError` whose `stage` says where it happened and whose message a
person can act on. The password never appears in one, nor in the log (IMAPClient redacts LOGIN
from its protocol log).

Configured folder names use "/" as the hierarchy separator whatever the server's; a server
whose folders all live under a prefix (e.g. "INBOX." on Courier or Cyrus) needs that prefix in
the configured name ("INBOX/dmarc/processed").
"""

import ast
import contextlib
import imaplib
import re
import socket
from collections.abc import Callable
from typing import TypeVar

from django.utils.translation import ngettext
from imapclient import IMAPClient
from imapclient.imapclient import DELETED

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

__all__ = ["ImapSession", "MailboxError", "ServerSettings", "Step", "test_connection"]

COMMAND_FAILED = re.compile(r"^[a-z]+ failed: ", re.IGNORECASE)
T = TypeVar("T")


# --- the IMAPClient seam ------------------------------------------------------------------------


class _PinnedIMAP4(imaplib.IMAP4):
    """imaplib over a socket already connected (and, for implicit TLS, verified) by us.

    `host` stays the host name: imaplib's STARTTLS verifies the certificate against it."""

    def __init__(self, host: str, port: int, sock: socket.socket):
        self._pinned = sock
        super().__init__(host, port)  # reads the greeting

    def _create_socket(self, timeout=None) -> socket.socket:
        return self._pinned


class _PinnedClient(IMAPClient):
    def __init__(self, host: str, port: int, sock: socket.socket, *, tls: bool, timeout: float):
        self._pinned = sock
        super().__init__(host, port, ssl=tls, timeout=timeout)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        return _PinnedIMAP4(self.host, self.port, self._pinned)


# --- helpers ----------------------------------------------------------------------------------


def _server_text(exc: BaseException) -> str:
    """What the server said, from an imaplib/IMAPClient error (which often holds a bytes repr)."""
    text = exc.args[0] if exc.args else ""
    if isinstance(text, str) and text[:2] in ("b'", 'b"'):
        with contextlib.suppress(ValueError, SyntaxError):
            text = ast.literal_eval(text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = COMMAND_FAILED.sub("", str(text).strip())  # IMAPClient's "select failed: ..."
    return text or type(exc).__name__


def _failure(exc: Exception, host: str, timeout: float, command: str, refused: str):
    """The MailboxError for an exception of one IMAP exchange: the server's NO or BAD is a
    "folder" error saying `refused` (what the commands after login fail that way for)."""
    if isinstance(exc, TimeoutError):
        return MailboxError("timeout", f"{host} did not answer {command} within {timeout:g} s")
    if isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort):
        return MailboxError(
            "folder", f"{refused or f'{host} refused {command}'}: {_server_text(exc)}"
        )
    reason = getattr(exc, "strerror", None) or _server_text(exc)
    return MailboxError("protocol", f"connection to {host} lost at {command}: {reason}")


class _Connector(Connector):
    """Opening an IMAP session, one stage at a time, so test_connection can report each."""

    def __init__(self, server: ServerSettings, *, force_copy: bool = False):
        super().__init__(server)
        self.force_copy = force_copy
        self.session: ImapSession | None = None  # once logged in
        self.client: _PinnedClient | None = None

    def secure(self) -> str:
        """TLS as the mailbox asks, and the server's greeting."""
        mode = self.server.tls_mode
        if mode == IMPLICIT:
            self.implicit_tls()
        self._greet()
        if mode == STARTTLS:
            self._starttls()
        if mode == PLAIN:
            return "none: plaintext is explicitly allowed for this mailbox"
        tls = self.client.socket()
        return f"{tls.version()}, certificate valid for {self.host}"

    def _greet(self) -> None:
        sock, where = self.take_socket(), self.where()
        try:
            self.client = _PinnedClient(
                self.host,
                self.server.port,
                sock,
                tls=self.server.tls_mode == IMPLICIT,
                timeout=self.server.timeout,
            )
        except TimeoutError:
            sock.close()
            raise MailboxError(
                "timeout", f"{where} sent no IMAP greeting within {self.server.timeout:g} s"
            ) from None
        except (imaplib.IMAP4.error, OSError, ValueError) as exc:
            sock.close()
            raise MailboxError(
                "protocol", f"{where} did not greet as an IMAP server: {_server_text(exc)}"
            ) from None

    def _starttls(self) -> None:
        where = f"{self.host} port {self.server.port}"
        if b"STARTTLS" not in self._call(self.client.capabilities, "CAPABILITY"):
            raise self.no_starttls("STARTTLS", 993)
        try:
            self.client.starttls(net.tls_context())
        except imaplib.IMAP4.abort as exc:
            raise MailboxError(
                "protocol", f"{where} closed the connection at STARTTLS: {_server_text(exc)}"
            ) from None
        except imaplib.IMAP4.error as exc:
            raise MailboxError("tls", f"{where} refused STARTTLS: {_server_text(exc)}") from None
        except OSError as exc:
            raise self.starttls_failure(exc) from None

    def login(self) -> str:
        """LOGIN, then the session is ready (`self.session`)."""
        username = self.server.username
        capabilities = self._call(self.client.capabilities, "CAPABILITY")
        if b"LOGINDISABLED" in capabilities:
            raise MailboxError(
                "login", f"{self.host} does not accept a password login on this connection"
            )
        refused = f"login refused for {username}"
        try:
            self._call(lambda: self.client.login(username, self.server.password), "LOGIN", refused)
        except MailboxError as exc:
            if exc.stage != "folder":  # i.e. not the server's NO
                raise
            raise MailboxError("login", without_password(str(exc), self.server.password)) from None
        self.session = ImapSession(self.client, self.server, self.host, force_copy=self.force_copy)
        self.client = None  # the session closes it now
        return f"logged in as {username}"

    def _call(self, function: Callable[[], T], command: str, refused: str = "") -> T:
        try:
            return function()
        except (imaplib.IMAP4.error, OSError, ValueError) as exc:
            error = _failure(exc, self.host, self.server.timeout, command, refused)
        if error.stage == "folder" and not refused:  # a NO before login: no folder involved
            error = MailboxError("protocol", str(error))
        raise error

    def abandon(self) -> None:
        """Close whatever a failed attempt left open."""
        self.close_socket()
        if self.client is not None:
            with contextlib.suppress(Exception):  # already closed: nothing left to do
                self.client.shutdown()
            self.client = None


# --- the session -----------------------------------------------------------------------------


class ImapSession:
    """A logged-in IMAP connection. Use `ImapSession.open(...)` as a context manager."""

    def __init__(self, client: IMAPClient, server: ServerSettings, host: str, *, force_copy=False):
        self._client = client
        self.server = server
        self.host = host
        self.force_copy = force_copy
        self._delimiter: str | None = None
        self._delimiter_known = False
        self._broken = False
        self._closed = False
        self._capabilities = {
            c.decode("ascii", "replace").upper()
            for c in self._call(client.capabilities, "CAPABILITY")
        }

    @classmethod
    def open(cls, server: ServerSettings, *, force_copy: bool = False) -> "ImapSession":
        """Connect, secure and log in; MailboxError says at which stage it failed."""
        connector = _Connector(server, force_copy=force_copy)
        try:
            connector.resolve()
            connector.connect()
            connector.secure()
            connector.login()
            return connector.session
        finally:
            connector.abandon()

    def __enter__(self) -> "ImapSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- folders -----------------------------------------------------------------------------

    @property
    def capabilities(self) -> set[str]:
        return set(self._capabilities)

    @property
    def delimiter(self) -> str | None:
        """The server's hierarchy separator (LIST "" ""); None for a flat server."""
        if not self._delimiter_known:
            listing = self._call(lambda: self._client.list_folders("", ""), 'LIST "" ""')
            separator = listing[0][1] if listing else None
            if isinstance(separator, bytes):
                separator = separator.decode("ascii", "replace")
            self._delimiter, self._delimiter_known = separator or None, True
        return self._delimiter

    def server_name(self, folder: str) -> str:
        """The server's name for a configured folder ("/"-separated)."""
        parts = folder.split("/")
        if not all(parts):
            raise MailboxError("folder", f"folder name {folder!r} has an empty part")
        if len(parts) == 1:
            return folder
        delimiter = self.delimiter
        if delimiter is None:
            raise MailboxError(
                "folder", f"{self.host} has no folder hierarchy: {folder} cannot be nested"
            )
        if delimiter != "/" and any(delimiter in part for part in parts):
            raise MailboxError(
                "folder",
                f"folder name {folder!r} contains {delimiter!r}, the separator of {self.host}'s "
                "folders: use '/' between the parts of a folder name",
            )
        return delimiter.join(parts)

    def exists(self, folder: str) -> bool:
        """Whether the folder exists and can hold messages."""
        return self._listed(self.server_name(folder), selectable=True)

    def _listed(self, name: str, *, selectable: bool) -> bool:
        listing = self._call(lambda: self._client.list_folders("", name), f"LIST {name}")
        for flags, _, listed in listing:
            unusable = {b"\\NOSELECT", b"\\NONEXISTENT"} & {f.upper() for f in flags}
            if listed == name and not (selectable and unusable):
                return True
        return False

    def ensure_folder(self, folder: str) -> bool:
        """Create the folder, and its missing parents; True when the folder had to be made."""
        parts = folder.split("/")
        created = False
        for depth in range(1, len(parts) + 1):
            name = self.server_name("/".join(parts[:depth]))
            if self._listed(name, selectable=depth == len(parts)):
                continue
            try:
                self._call(
                    lambda n=name: self._client.create_folder(n),
                    f"CREATE {name}",
                    f"folder {'/'.join(parts[:depth])} cannot be created",
                )
            except MailboxError as exc:
                # Someone else may have created it meanwhile.
                if exc.stage != "folder" or not self._listed(name, selectable=False):
                    raise
                continue
            created = depth == len(parts)
            self._subscribe(name)
        return created

    def _subscribe(self, name: str) -> None:
        """So mail clients show the folder; a refusal changes nothing for mailsec."""
        try:
            self._call(lambda: self._client.subscribe_folder(name), f"SUBSCRIBE {name}")
        except MailboxError as exc:
            if exc.stage != "folder":
                raise

    def select(self, folder: str, *, readonly: bool) -> int:
        """Select the folder; returns its UIDVALIDITY."""
        name = self.server_name(folder)
        command = "EXAMINE" if readonly else "SELECT"
        response = self._call(
            lambda: self._client.select_folder(name, readonly=readonly),
            f"{command} {name}",
            f"folder {folder} cannot be opened",
        )
        uidvalidity = response.get(b"UIDVALIDITY")
        if uidvalidity is None:
            raise MailboxError("protocol", f"{self.host} gave no UIDVALIDITY for folder {folder}")
        return int(uidvalidity)

    # --- messages ----------------------------------------------------------------------------

    def uids(self) -> list[int]:
        """The UIDs of the selected folder's messages not flagged \\Deleted, ascending."""
        found = self._call(lambda: self._client.search(["NOT", "DELETED"]), "UID SEARCH")
        return sorted(int(uid) for uid in found)

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """Whole messages by UID (BODY.PEEK[]: nothing is marked \\Seen); a UID gone meanwhile
        is missing from the result. The caller chooses the batch size."""
        if not uids:
            return {}
        wanted = set(uids)
        response = self._call(
            lambda: self._client.fetch(sorted(wanted), [b"BODY.PEEK[]"]), "UID FETCH"
        )
        return {
            uid: data[b"BODY[]"]
            for uid, data in response.items()
            if uid in wanted and isinstance(data.get(b"BODY[]"), bytes)
        }

    def move(self, uids: int | list[int], folder: str) -> None:
        """Move messages of the selected folder, in one command: MOVE where offered (and not
        force_copy); else COPY, \\Deleted and UID EXPUNGE of those messages alone.

        Limitation: a server with neither MOVE nor UIDPLUS only has plain EXPUNGE, which also
        removes every other message of the folder some client flagged \\Deleted."""
        uids = [uids] if isinstance(uids, int) else list(uids)
        if not uids:
            return
        target = self.server_name(folder)
        which = f"message UID {uids[0]}" if len(uids) == 1 else f"{len(uids)} messages"
        refused = f"{which} cannot be moved to {folder}"
        if "MOVE" in self._capabilities and not self.force_copy:
            self._call(lambda: self._client.move(uids, target), "UID MOVE", refused)
            return
        self._call(lambda: self._client.copy(uids, target), "UID COPY", refused)
        self._call(
            lambda: self._client.add_flags(uids, [DELETED], silent=True), "UID STORE", refused
        )
        if "UIDPLUS" in self._capabilities:
            self._call(lambda: self._client.uid_expunge(uids), "UID EXPUNGE", refused)
        else:
            self._call(self._client.expunge, "EXPUNGE", refused)

    def close(self) -> None:
        """LOGOUT and close; never raises."""
        if self._closed:
            return
        self._closed = True
        if not self._broken:
            try:
                self._client.logout()
                return
            except Exception:  # noqa: S110  (a connection that is gone needs no goodbye)
                pass
        with contextlib.suppress(Exception):
            self._client.shutdown()

    # --- errors ------------------------------------------------------------------------------

    def _call(self, function: Callable[[], T], command: str, refused: str = "") -> T:
        """Run one IMAP exchange; failures become MailboxError (see _failure). A timeout or a
        lost connection marks the session broken, so that nothing more is sent on it."""
        if self._closed or self._broken:
            raise MailboxError("protocol", f"the connection to {self.host} is already closed")
        try:
            return function()
        except (imaplib.IMAP4.error, OSError, ValueError) as exc:
            error = _failure(exc, self.host, self.server.timeout, command, refused)
            self._broken = error.stage != "folder"
            raise error from None


# --- the connection test ---------------------------------------------------------------------


def test_connection(server: ServerSettings, folders: list[str], *, read_only: bool) -> list[Step]:
    """DNS, TCP, TLS, login, then the folders: folders[0] is the source folder (selected
    read-only), the others the folders messages are moved to (they must exist, or are created
    unless read_only, where they are not needed). Stops at the first failure."""
    connector = _Connector(server)
    steps: list[Step] = []
    stages = (
        ("DNS", connector.resolve),
        ("TCP", connector.connect),
        ("TLS", connector.secure),
        ("Login", connector.login),
    )
    try:
        connector.check_policy()
    except MailboxError as exc:
        return [Step("TLS", False, str(exc), exc.stage)]
    try:
        for name, stage in stages:
            try:
                steps.append(Step(name, True, stage()))
            except MailboxError as exc:
                steps.append(Step(name, False, str(exc), exc.stage))
                return steps
        with connector.session as session:
            steps += _folder_steps(session, [f for f in folders if f], read_only=read_only)
    finally:
        connector.abandon()
    return steps


test_connection.__test__ = False  # not a test, whatever its name says to pytest


def _folder_steps(session: ImapSession, folders: list[str], *, read_only: bool) -> list[Step]:
    steps = []
    if not folders:
        return steps
    source, *targets = folders
    try:
        uidvalidity = session.select(source, readonly=True)
        count = len(session.uids())
    except MailboxError as exc:
        return [Step(f"Folder {source}", False, str(exc), exc.stage)]
    found = f"{count} {ngettext('message', 'messages', count)} (UIDVALIDITY {uidvalidity})"
    steps.append(Step(f"Folder {source}", True, found))
    for folder in dict.fromkeys(t for t in targets if t != source):
        name = f"Folder {folder}"
        try:
            if session.exists(folder):
                steps.append(Step(name, True, "exists"))
            elif read_only:
                steps.append(Step(name, True, "does not exist; not needed in read-only mode"))
            else:
                session.ensure_folder(folder)
                steps.append(Step(name, True, "created"))
        except MailboxError as exc:
            steps.append(Step(name, False, str(exc), exc.stage))
            return steps
    return steps
