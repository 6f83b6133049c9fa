"""The one place that opens sockets to remote hosts.

Host names are resolved only through the run's `DnsSession` (A, then AAAA), never the system
resolver, and every address is screened before any connection: private, loopback, link-local,
multicast, reserved and unspecified addresses are refused unless
`settings.MAILSEC_ALLOW_PRIVATE_TARGETS` is on. Together that is what keeps a domain's owner
from making mailsec probe the network it runs in (server-side request forgery).

Every failure is a `NetError` whose message a user can act on. A DNS lookup that fails
(timeout, SERVFAIL, REFUSED) is NOT wrapped: `domains.dns.LookupFailed` propagates unchanged,
because the engine turns it into "could not test" rather than a verdict about the host.
"""

import http.client
import io
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings

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
