"""Reaching a report mailbox's server, whatever it speaks: shared by the IMAP seam
(`reports/mailbox.py`) and the POP3 seam (`reports/pop3.py`).

The host is resolved and screened exactly like every other remote host (`domains.net`: the run's
DNS, private targets refused unless allowed), the TCP connection goes to one of those screened
addresses, and TLS is verified for the host NAME (SNI and certificate), never the address. The
password is only ever sent over TLS (implicit, or STARTTLS/STLS, never a fallback to plaintext),
or over plaintext when the mailbox says so explicitly (tls_mode "plain" AND allow_plaintext).

Every failure is a `MailboxError` whose `stage` says where it happened and whose message a
person can act on; the password never appears in one.
"""

import contextlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field

import idna

from domains import net
from domains.dns import DnsSession, LookupFailed

STAGES = ("dns", "tcp", "tls", "certificate", "login", "folder", "protocol", "refused", "timeout")
IMPLICIT, STARTTLS, PLAIN = "implicit", "starttls", "plain"


class MailboxError(Exception):
    """The mailbox could not be reached or used; `stage` says where (one of STAGES)."""

    def __init__(self, stage: str, message: str):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        super().__init__(message)
        self.stage = stage


@dataclass
class ServerSettings:
    host: str
    port: int
    tls_mode: str  # reports.models.TlsMode: implicit, starttls or plain
    username: str
    password: str = field(repr=False)
    allow_plaintext: bool = False
    timeout: float = 30.0  # for every socket operation

    @classmethod
    def of(cls, mailbox, password: str) -> "ServerSettings":
        """The settings of a reports.models.Mailbox, with its decrypted password."""
        return cls(
            host=mailbox.host,
            port=mailbox.port,
            tls_mode=mailbox.tls_mode,
            username=mailbox.username,
            password=password,
            allow_plaintext=mailbox.allow_plaintext,
        )


@dataclass(frozen=True)
class Step:
    """One step of a connection test; `stage` is the MailboxError stage when it failed."""

    name: str
    ok: bool
    detail: str
    stage: str = ""


def ascii_host(host: str) -> tuple[str, bool]:
    """The host as it is looked up and verified (an IP literal, or the A-label name), and
    whether it is an IP address."""
    text = host.strip().strip("[]").rstrip(".").lower()
    if not text:
        raise MailboxError("dns", "no host name is configured for the mailbox")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text)), True
    try:
        return idna.encode(text, uts46=True).decode("ascii"), False
    except idna.IDNAError as exc:
        raise MailboxError("dns", f"{host!r} is not a valid host name: {exc}") from None


def without_password(text: str, password: str) -> str:
    """Servers do not echo the password; still, never show it."""
    return text.replace(password, "********") if password else text


class Connector:
    """Opening a connection, one stage at a time, so a connection test can report each: the
    policy, DNS and screening, TCP, implicit TLS. The protocol seams add the greeting,
    STARTTLS and the login."""

    def __init__(self, server: ServerSettings):
        self.server = server
        self.host = ""
        self.addresses: list[str] = []
        self.address = ""
        self.sock: socket.socket | None = None

    def check_policy(self) -> None:
        mode, server = self.server.tls_mode, self.server
        if mode not in (IMPLICIT, STARTTLS, PLAIN):
            raise MailboxError("refused", f"unknown TLS mode {mode!r}")
        if mode == PLAIN and not server.allow_plaintext:
            raise MailboxError(
                "refused",
                f"the password for {server.username} would be sent to {server.host} without "
                "encryption: choose TLS or STARTTLS, or explicitly allow plaintext for this "
                "mailbox",
            )

    def resolve(self) -> str:
        self.check_policy()
        self.host, is_ip = ascii_host(self.server.host)
        if is_ip:
            addresses, how = [self.host], "an IP address, no DNS lookup"
        else:
            addresses = self._lookup()
            how = f"{self.host} has {', '.join(addresses)}"
        try:
            self.addresses = net.allowed_addresses(self.host, addresses)
        except net.TargetRefused as exc:
            raise MailboxError("refused", str(exc)) from None
        return how

    def _lookup(self) -> list[str]:
        try:
            return net.addresses_of(DnsSession(), self.host)
        except net.NoAddress as exc:
            raise MailboxError("dns", str(exc)) from None
        except LookupFailed as exc:
            raise MailboxError(
                "dns", f"DNS lookup for {self.host} failed ({exc.reason}): try again later"
            ) from None

    def connect(self) -> str:
        timeout = self.server.timeout
        deadline = time.monotonic() + timeout
        try:
            self.sock, self.address = net.connect_tcp(
                self.host, self.addresses, self.server.port, deadline, timeout
            )
        except net.NetTimeout as exc:
            raise MailboxError("timeout", str(exc)) from None
        except net.NetError as exc:
            raise MailboxError("tcp", str(exc)) from None
        return f"connected to {self.address} port {self.server.port}"

    def implicit_tls(self) -> None:
        timeout = self.server.timeout
        deadline = time.monotonic() + timeout
        sock, self.sock = self.sock, None
        try:
            self.sock = net.start_tls(sock, self.host, self.address, deadline, timeout)
        except net.CertificateInvalid as exc:
            raise MailboxError("certificate", str(exc)) from None
        except net.NetTimeout as exc:
            raise MailboxError("timeout", str(exc)) from None
        except net.NetError as exc:
            raise MailboxError("tls", str(exc)) from None

    def take_socket(self) -> socket.socket:
        """The connected (and, for implicit TLS, verified) socket, for the protocol client."""
        sock, self.sock = self.sock, None
        sock.settimeout(self.server.timeout)
        return sock

    def where(self) -> str:
        return f"{self.host} ({self.address}) port {self.server.port}"

    def starttls_failure(self, exc: OSError) -> MailboxError:
        """The MailboxError for a failed STARTTLS/STLS handshake (after the server's yes)."""
        where = f"{self.host} port {self.server.port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or exc.reason or str(exc)
            return MailboxError("certificate", f"certificate for {self.host} not valid: {reason}")
        if isinstance(exc, ssl.SSLError):
            return MailboxError("tls", f"TLS with {where} failed: {exc.reason or exc}")
        if isinstance(exc, TimeoutError):
            return MailboxError(
                "timeout", f"no TLS handshake with {where} within {self.server.timeout:g} s"
            )
        reason = exc.strerror or str(exc) or "connection closed"
        return MailboxError("tls", f"TLS with {where} failed: {reason}")

    def no_starttls(self, command: str, implicit_port: int) -> MailboxError:
        return MailboxError(
            "tls",
            f"{self.host} port {self.server.port} does not offer {command}, and the password is "
            f"never sent without TLS: use implicit TLS (usually port {implicit_port}), or ask "
            "the provider to enable it",
        )

    def close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
