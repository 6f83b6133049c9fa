"""The one place that opens sockets to remote hosts.

Host names are resolved only through the run's `DnsSession` (A, then AAAA), never the system
resolver, and every address is screened before any connection: private, loopback, link-local,
multicast, reserved and unspecified addresses are refused unless
`settings.MAILSEC_ALLOW_PRIVATE_TARGETS` is on. Together that is what keeps a domain's owner
from making mailsec probe the network it runs in (server-side request forgery).

Two kinds of exchange go through here: HTTPS fetches (`fetch_https`, MTA-STS policies) and the
line conversations of the protocol probes (`LineChannel`: SMTP, IMAP, POP3, with STARTTLS or
implicit TLS, certificates not verified here but judged by domains.probes.certs). A probe
connects to one address it was given (`connect_address`, screened like every other), and the
failures it must tell apart have their own classes: Refused, ConnectTimeout, ReadTimeout,
Closed, LineTooLong, TlsFailed.

Every failure is a `NetError` whose message a user can act on. A DNS lookup that fails
(timeout, SERVFAIL, REFUSED) is NOT wrapped: `domains.dns.LookupFailed` propagates unchanged,
because the engine turns it into "could not test" rather than a verdict about the host.
"""

import contextlib
import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from domains.dns import DnsSession

CONNECT_TIMEOUT = 5.0  # the most one TCP connection attempt may take
USER_AGENT = "mailsec"


class NetError(Exception):
    """A remote host could not be reached or did not answer as it should."""

    def __init__(self, message: str, *, host: str = ""):
        super().__init__(message)
        self.host = host


class TargetRefused(NetError):
    """Every address of the host is one mailsec must not connect to (e.g. a private network)."""


class NoAddress(NetError):
    """The host name has no A or AAAA record."""


class ConnectFailed(NetError):
    """No address of the host accepted a TCP connection."""


class TlsFailed(NetError):
    """The TLS handshake failed."""


class CertificateInvalid(TlsFailed):
    """The server's certificate is not valid for the host name (untrusted, expired, wrong name)."""


class HttpError(NetError):
    """The server did not speak HTTP as it should."""


class HttpStatusError(HttpError):
    """The server answered with another status than the one required."""


class TooLarge(NetError):
    """The response body is larger than the caller accepts."""


class NetTimeout(NetError):
    """The exchange did not finish within its deadline."""


@dataclass(frozen=True)
class FetchResult:
    url: str
    status: int
    reason: str
    headers: http.client.HTTPMessage  # case-insensitive: headers["content-type"]
    body: bytes
    address: str  # the IP address that answered

    @property
    def content_type(self) -> str:
        """The media type alone, lower case ("" when there is no Content-Type)."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def raise_for_status(self, expected: int = 200) -> None:
        """Raise HttpStatusError unless the status is `expected`; redirects are never followed."""
        if self.status == expected:
            return
        answered = f"{self.url} answered HTTP {self.status} {self.reason}".rstrip()
        location = self.headers.get("Location")
        if 300 <= self.status < 400 and location:
            message = f"{answered}, a redirect to {location}, which is not followed"
        else:
            message = f"{answered}, not {expected}"
        raise HttpStatusError(message, host=self.url.split("/")[2])


# --- addresses --------------------------------------------------------------------------------


# IPv6 prefixes that carry an IPv4 address, which decides where a packet really goes.
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
# RFC 8215: for one site's own translators, at prefix lengths (and so IPv4 positions) the site
# chooses; whatever it wraps is only reachable from there.
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def refusal_reason(address: str) -> str | None:
    """Why mailsec must not connect to `address` ("private", "loopback" ...), or None.

    An IPv6 address wrapping an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by the address
    it wraps, which is where a translator or relay delivers it: a 6to4 or NAT64 form of a
    private address is as private as the address itself. Teredo and local-use NAT64 addresses
    are refused whatever they carry (their IPv4 is obfuscated, or its place is site-specific).
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        wrapped = _wrapped_ipv4(ip)
        if isinstance(wrapped, str):
            return wrapped
        if wrapped is not None:
            inner = refusal_reason(str(wrapped))
            if inner is None or ip.ipv4_mapped is not None:
                return inner
            kind = "6to4" if ip.sixtofour is not None else "NAT64"
            return f"{inner} ({kind} of {wrapped})"
    for reason, flagged in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not globally routable", not ip.is_global),
    ):
        if flagged:
            return reason
    return None


# Whole sentences per kind of address refused (a form's error), in the reader's language.
_CONNECT = {
    "unspecified": gettext_lazy("mailsec does not connect to unspecified addresses."),
    "loopback": gettext_lazy("mailsec does not connect to loopback addresses."),
    "link-local": gettext_lazy("mailsec does not connect to link-local addresses."),
    "multicast": gettext_lazy("mailsec does not connect to multicast addresses."),
    "reserved": gettext_lazy("mailsec does not connect to reserved addresses."),
    "private": gettext_lazy("mailsec does not connect to private addresses."),
    "not globally routable": gettext_lazy(
        "mailsec does not connect to addresses that are not globally routable."
    ),
    "local-use NAT64": gettext_lazy("mailsec does not connect to local-use NAT64 addresses."),
    "Teredo tunnel": gettext_lazy("mailsec does not connect to Teredo tunnel addresses."),
}
_SEND = {
    "unspecified": gettext_lazy("mailsec does not send to unspecified addresses."),
    "loopback": gettext_lazy("mailsec does not send to loopback addresses."),
    "link-local": gettext_lazy("mailsec does not send to link-local addresses."),
    "multicast": gettext_lazy("mailsec does not send to multicast addresses."),
    "reserved": gettext_lazy("mailsec does not send to reserved addresses."),
    "private": gettext_lazy("mailsec does not send to private addresses."),
    "not globally routable": gettext_lazy(
        "mailsec does not send to addresses that are not globally routable."
    ),
    "local-use NAT64": gettext_lazy("mailsec does not send to local-use NAT64 addresses."),
    "Teredo tunnel": gettext_lazy("mailsec does not send to Teredo tunnel addresses."),
}
_WRAPPED = re.compile(r"^(?P<kind>.+) \((?P<form>6to4|NAT64) of (?P<address>.+)\)$")


def refusal_sentence(reason: str, *, sending: bool = False) -> str:
    """refusal_reason()'s answer as a form's error, in the active language."""
    wrapped = _WRAPPED.match(reason)
    kind = wrapped["kind"] if wrapped else reason
    sentence = (_SEND if sending else _CONNECT).get(kind)
    if sentence is None:  # a kind added to refusal_reason() without its sentences
        return gettext("mailsec does not connect to such addresses (%(kind)s).") % {"kind": reason}
    sentence = str(sentence)
    if wrapped:
        sentence += " " + gettext("The address is the %(form)s form of %(address)s.") % {
            "form": wrapped["form"],
            "address": wrapped["address"],
        }
    return sentence


def _wrapped_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | str | None:
    """The IPv4 address `ip` carries, a reason to refuse it outright, or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64_LOCAL:
        return "local-use NAT64"
    if ip.teredo is not None:
        return "Teredo tunnel"
    return None


def addresses_of(session: DnsSession, host: str) -> list[str]:
    """The host's IPv4 then IPv6 addresses, in DNS order; LookupFailed propagates."""
    answers = [session.lookup(host, rdtype) for rdtype in ("A", "AAAA")]
    addresses = [r.address for answer in answers for r in answer.rdatas]
    if not addresses:
        if answers[0].status == "nxdomain":
            raise NoAddress(f"{host} does not exist (NXDOMAIN)", host=host)
        raise NoAddress(f"{host} has no address (no A or AAAA record)", host=host)
    return addresses


def allowed_addresses(host: str, addresses: list[str]) -> list[str]:
    """The addresses mailsec may connect to; TargetRefused when there is none."""
    if settings.MAILSEC_ALLOW_PRIVATE_TARGETS:
        return addresses
    refused = {a: refusal_reason(a) for a in addresses}
    allowed = [a for a in addresses if refused[a] is None]
    if not allowed:
        reasons = ", ".join(f"{a} ({why})" for a, why in refused.items())
        raise TargetRefused(
            f"{host} points only to addresses mailsec does not connect to: {reasons}",
            host=host,
        )
    return allowed


# --- connecting -------------------------------------------------------------------------------


def _remaining(deadline: float, host: str, address: str, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise NetTimeout(
            f"no complete answer from {host} ({address}) within {timeout:g} s", host=host
        )
    return left


def connect_tcp(
    host: str, addresses: list[str], port: int, deadline: float, timeout: float
) -> tuple[socket.socket, str]:
    """A TCP connection to the first address that accepts one, tried in turn."""
    failures = []
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        wait = min(CONNECT_TIMEOUT, left)
        sock.settimeout(wait)
        try:
            sock.connect((address, port))
        except TimeoutError:
            sock.close()
            failures.append(f"{address}: no answer within {wait:.3g} s")
        except OSError as exc:
            sock.close()
            failures.append(f"{address}: {(exc.strerror or str(exc)).lower()}")
        else:
            return sock, address
    if not failures:
        raise NetTimeout(f"no connection to {host} within {timeout:g} s", host=host)
    raise ConnectFailed(f"cannot connect to {host} port {port}: {'; '.join(failures)}", host=host)


def tls_context() -> ssl.SSLContext:
    """Certificates checked against settings.MAILSEC_TLS_CA_FILE, or the system store."""
    return ssl.create_default_context(cafile=settings.MAILSEC_TLS_CA_FILE)


def start_tls(sock: socket.socket, host: str, address: str, deadline: float, timeout: float):
    """TLS with SNI and certificate verification against the host name, never the IP."""
    sock.settimeout(_remaining(deadline, host, address, timeout))
    try:
        return tls_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        reason = exc.verify_message or exc.reason or str(exc)
        raise CertificateInvalid(f"certificate for {host} not valid: {reason}", host=host) from None
    except ssl.SSLError as exc:
        sock.close()
        reason = exc.reason or str(exc)
        raise TlsFailed(f"TLS with {host} ({address}) failed: {reason}", host=host) from None
    except TimeoutError:
        sock.close()
        raise NetTimeout(
            f"no TLS handshake with {host} ({address}) within {timeout:g} s", host=host
        ) from None
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc) or "connection closed"
        raise TlsFailed(f"TLS with {host} ({address}) failed: {reason}", host=host) from None


class _DeadlineReader(io.RawIOBase):
    """Reads from the socket, giving each read only the time left before the deadline, so a
    server that trickles bytes cannot stretch the exchange past it."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client needs of a socket, bounded by one deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self.sock, self.deadline))

    def close(self) -> None:
        pass  # http.client closes early, handing the socket to the response: fetch_https closes


class _Connection(http.client.HTTPConnection):
    """HTTP over a TLS socket already opened to a screened address (http.client never
    resolves or connects by itself here)."""

    default_port = 443  # so the Host header carries no ":443"

    def __init__(self, host: str, port: int, sock: _DeadlineSocket):
        super().__init__(host, port)
        self._ready = sock

    def connect(self) -> None:
        self.sock = self._ready


# --- fetching ---------------------------------------------------------------------------------


def fetch_https(
    session: DnsSession,
    host: str,
    path: str,
    *,
    max_bytes: int = 64 * 1024,
    timeout: float = 10,
    port: int = 443,
) -> FetchResult:
    """GET https://host/path: one request, no redirects followed, within `timeout` seconds
    overall, refusing a body over `max_bytes`. Any status is returned (see
    FetchResult.raise_for_status); failures raise a NetError, failed DNS lookups LookupFailed."""
    deadline = time.monotonic() + timeout
    url = f"https://{host}{'' if port == 443 else f':{port}'}{path}"
    addresses = allowed_addresses(host, addresses_of(session, host))
    sock, address = connect_tcp(host, addresses, port, deadline, timeout)
    tls = start_tls(sock, host, address, deadline, timeout)
    connection = _Connection(host, port, _DeadlineSocket(tls, deadline))
    try:
        connection.request(
            "GET",
            path,
            headers={"User-Agent": USER_AGENT, "Accept": "text/plain", "Connection": "close"},
        )
        response = connection.getresponse()
        body = _read_body(response, url, host, max_bytes)
    except TimeoutError:
        raise NetTimeout(
            f"no complete answer from {url} ({address}) within {timeout:g} s", host=host
        ) from None
    except http.client.HTTPException as exc:
        reason = str(exc) or type(exc).__name__
        raise HttpError(
            f"{url} ({address}) sent no valid HTTP response: {reason}", host=host
        ) from None
    except ssl.SSLError as exc:
        raise TlsFailed(
            f"TLS with {host} ({address}) failed: {exc.reason or exc}", host=host
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise HttpError(f"{url} ({address}): connection lost: {reason}", host=host) from None
    finally:
        connection.close()
        tls.close()
    return FetchResult(
        url=url,
        status=response.status,
        reason=response.reason,
        headers=response.headers,
        body=body,
        address=address,
    )


def _read_body(response: http.client.HTTPResponse, url: str, host: str, max_bytes: int) -> bytes:
    """The whole body, or TooLarge as soon as it passes max_bytes (never silently cut)."""
    too_large = f"{url} sent more than {max_bytes} bytes (the most accepted)"
    length = response.getheader("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise TooLarge(
            f"{url} announced {int(length)} bytes, more than the {max_bytes} accepted", host=host
        )
    chunks, size = [], 0
    while chunk := response.read(min(64 * 1024, max_bytes + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(too_large, host=host)
    return b"".join(chunks)


# --- line conversations (the protocol probes) -------------------------------------------------


class Refused(ConnectFailed):
    """The host answered the connection attempt with a reset: nothing listens on that port."""


class ConnectTimeout(NetTimeout):
    """No TCP connection within the timeout (a firewall dropping packets, or no host)."""


class ReadTimeout(NetTimeout):
    """Connected, but the awaited line did not come in time."""


class Closed(NetError):
    """The server closed or reset the connection in the middle of the conversation."""


class LineTooLong(NetError):
    """A line longer than the caller accepts: the rest is never read."""


def screen_address(address: str) -> None:
    """TargetRefused when mailsec must not connect to `address` (see the module docstring)."""
    reason = None if settings.MAILSEC_ALLOW_PRIVATE_TARGETS else refusal_reason(address)
    if reason:
        raise TargetRefused(
            f"{address} is {reason}: mailsec does not connect to such addresses "
            "(MAILSEC_ALLOW_PRIVATE_TARGETS is off)",
            host=address,
        )


def connect_address(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to one screened address, or Refused / ConnectTimeout / ConnectFailed:
    the three are told apart because they mean different things about the host."""
    screen_address(address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except TimeoutError:
        sock.close()
        raise ConnectTimeout(
            f"no TCP connection to {address} port {port} within {timeout:g} s", host=address
        ) from None
    except ConnectionRefusedError:
        sock.close()
        raise Refused(
            f"{address} port {port} refused the connection (nothing listens there)", host=address
        ) from None
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ConnectFailed(
            f"cannot connect to {address} port {port}: {reason}", host=address
        ) from None
    return sock


def probe_tls_context(version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that verifies nothing: the probes judge the certificate themselves
    (domains.probes.certs), so that an untrusted or expired one is reported, not just refused.

    With `version`, exactly that TLS version is offered. TLS 1.0 and 1.1 need OpenSSL's security
    level 0 (their SHA-1 based handshake signatures are refused above it) just to be tried."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version is not None:
        with warnings.catch_warnings():  # ssl deprecates TLS 1.0/1.1: trying them is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            if version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = version
            context.maximum_version = version
    return context


class LineChannel:
    """One conversation with a line protocol server (SMTP, IMAP, POP3) over one connection:
    every read waits at most its own timeout and never reads past `max_line` bytes for a line,
    so a server that trickles, floods or says nothing costs a bounded time and memory.

    `starttls` upgrades the same connection (STARTTLS / STLS, or implicit TLS right after the
    connect) without verifying the certificate, and keeps the TLS socket for inspection."""

    def __init__(self, sock: socket.socket, address: str, port: int, *, max_line: int = 4096):
        self.sock, self.address, self.port, self.max_line = sock, address, port, max_line
        self.tls: ssl.SSLSocket | None = None
        self._buffer = bytearray()

    @classmethod
    def open(cls, address: str, port: int, timeout: float, **kwargs) -> "LineChannel":
        return cls(connect_address(address, port, timeout), address, port, **kwargs)

    def read_line(self, timeout: float) -> str:
        """The next line without its line ending (decoded leniently), within `timeout` s."""
        deadline = time.monotonic() + timeout
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > self.max_line:
                raise LineTooLong(
                    f"{self.address} port {self.port} sent a line longer than "
                    f"{self.max_line} bytes",
                    host=self.address,
                )
            self._buffer += self._receive(deadline, timeout)
        line, self._buffer = bytes(self._buffer[:end]), self._buffer[end + 1 :]
        if len(line) > self.max_line:
            raise LineTooLong(
                f"{self.address} port {self.port} sent a line longer than {self.max_line} bytes",
                host=self.address,
            )
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def _receive(self, deadline: float, timeout: float) -> bytes:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            data = self.sock.recv(self.max_line + 1)
        except TimeoutError:
            raise ReadTimeout(
                f"{self.address} port {self.port} sent no complete line within {timeout:g} s",
                host=self.address,
            ) from None
        except ssl.SSLError as exc:
            raise Closed(self._lost(exc.reason or str(exc)), host=self.address) from None
        except OSError as exc:
            raise Closed(self._lost(exc.strerror or str(exc)), host=self.address) from None
        if not data:
            raise Closed(self._lost("closed by the server"), host=self.address)
        return data

    def _lost(self, reason: str) -> str:
        return f"{self.address} port {self.port}: connection lost ({str(reason).lower()})"

    def send_line(self, text: str, timeout: float) -> None:
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(text.encode("ascii") + b"\r\n")
        except TimeoutError:
            raise ReadTimeout(
                f"{self.address} port {self.port} took no data within {timeout:g} s",
                host=self.address,
            ) from None
        except OSError as exc:
            raise Closed(self._lost(exc.strerror or str(exc)), host=self.address) from None

    def starttls(self, server_name: str, timeout: float, version=None) -> ssl.SSLSocket:
        """A TLS handshake on this connection (SNI `server_name`), certificate not verified.

        Whatever the server sent after its answer to STARTTLS and before the handshake is
        dropped: it was not protected by TLS (a man in the middle could have put it there)."""
        self._buffer.clear()
        self.sock.settimeout(timeout)
        try:
            self.tls = probe_tls_context(version).wrap_socket(
                self.sock,
                server_hostname=server_name.rstrip("."),  # SNI: no final dot
            )
        except TimeoutError:
            raise NetTimeout(
                f"no TLS handshake with {self.address} port {self.port} within {timeout:g} s",
                host=self.address,
            ) from None
        except ssl.SSLError as exc:
            raise TlsFailed(
                f"TLS with {self.address} port {self.port} failed: {exc.reason or exc}",
                host=self.address,
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or "connection closed"
            raise TlsFailed(
                f"TLS with {self.address} port {self.port} failed: {reason}", host=self.address
            ) from None
        self.sock = self.tls
        return self.tls

    def served_chain(self) -> list[bytes]:
        """The certificates the server sent, leaf first, as DER (empty before TLS).

        Python 3.11 has no public call for the chain (3.13 adds SSLSocket.get_unverified_chain);
        the private method of the underlying SSL object is the same one, present since 3.10."""
        if self.tls is None:
            return []
        chain = self.tls._sslobj.get_unverified_chain() or []
        return [cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in chain]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
