"""domains.net against real servers on loopback: knot for the names, HTTPS servers with
certificates from a throwaway CA made here.

The helpers above the tests (CertificateAuthority, HttpsServer, SilentServer, zone_text) are also
used by test_mta_sts.py.
"""

import random
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from domains import net
from domains.dns import DnsSession, LookupFailed
from tests.knot import KnotServer

# --- certificates ---------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class CertificateAuthority:
    """A throwaway CA in `directory`: `cert_path` is its PEM, for MAILSEC_TLS_CA_FILE."""

    def __init__(self, directory: Path, label: str):
        self.directory, self.label = Path(directory), label
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        key_usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"mailsec test CA {label}"))
            .issuer_name(_name(f"mailsec test CA {label}"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = self.directory / f"ca-{label}.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, *names: str, expired: bool = False) -> tuple[Path, Path]:
        """A server certificate for the DNS `names`: (certificate PEM path, key PEM path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        start, end = (
            (now - timedelta(days=30), now - timedelta(days=1))
            if expired
            else (
                now - timedelta(days=1),
                now + timedelta(days=30),
            )
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = self.directory / f"{self.label}-{names[0]}{'-expired' if expired else ''}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return cert_path, key_path


# --- servers --------------------------------------------------------------------------------


@dataclass
class Reply:
    """What the HTTPS server answers for one (host, path)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/plain"
    headers: dict = field(default_factory=dict)
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does
    raw: bytes | None = None  # sent as is instead of an HTTP response
    hang: bool = False  # read the request, then answer nothing until the server stops
    trickle: float = 0  # send the status line one byte per `trickle` seconds


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        server = self.server
        server.requests.append((host, self.path, dict(self.headers)))
        reply = server.routes.get((host, self.path)) or Reply(404, b"not found\n")
        self.close_connection = True
        if reply.hang:
            server.stopping.wait()
        elif reply.trickle:
            for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if server.stopping.wait(reply.trickle):
                    break
        elif reply.raw is not None:
            self.wfile.write(reply.raw)
        else:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.send_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)

    def log_message(self, *args):
        pass


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, context: ssl.SSLContext):
        self.tls = context
        self.routes: dict[tuple[str, str], Reply] = {}
        self.requests: list = []
        self.server_names: list[str | None] = []  # SNI of every handshake
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer's own would look the address up with socket.getfqdn(): a PTR query to
        # the system resolver, off the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:  # in the request's thread, so a stalled handshake holds up nobody else
            tls = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return  # the client refused our certificate: what the test looks at is its side
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # a client giving up mid-exchange (timeouts, caps) is expected here


def bind_loopback(port: int, *, network: int = 44) -> socket.socket:
    """A TCP socket bound to `port` on a loopback address of its own (127.<network>.x.y,
    picked at random so that suites running side by side do not collide on a fixed port such
    as 443)."""
    last_error = None
    for _ in range(20):
        address = f"127.{network}.{random.randint(0, 255)}.{random.randint(1, 254)}"  # noqa: S311
        sock = socket.socket()
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    pytest.fail(
        f"cannot bind port {port} on any 127.{network}.x.y address: {last_error}", pytrace=False
    )


class HttpsServer:
    """A real HTTPS server on loopback answering `routes[(host, path)]` (404 otherwise), with
    the certificate chosen by SNI from `certificates` (the first one when SNI matches none)."""

    def __init__(self, certificates: dict[str, tuple[Path, Path]], *, port: int = 0):
        contexts = {}
        for name, (cert, key) in certificates.items():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            contexts[name] = context
        default = next(iter(contexts.values()))

        def choose(sslobj, server_name, _context):
            self.server.server_names.append(server_name)
            if server_name in contexts:
                sslobj.context = contexts[server_name]

        default.sni_callback = choose
        listener = bind_loopback(port)
        self.host, self.port = listener.getsockname()[:2]
        listener.close()
        self.server = _TlsHttpServer((self.host, self.port), default)
        self.routes = self.server.routes
        self.requests = self.server.requests
        self.server_names = self.server.server_names
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class SilentServer:
    """A TCP port that completes handshakes (the kernel does) but never reads or answers."""

    def __init__(self, *, port: int = 0):
        self.sock = bind_loopback(port)
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()[:2]

    def drain(self) -> int:
        """Accept and close the connections waiting; how many there were."""
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def stop(self) -> None:
        self.sock.close()


def free_address(port: int) -> str:
    """A loopback address where nothing listens on `port` (connections are refused); in
    127.43/16, so it sorts before the servers' addresses."""
    sock = bind_loopback(port, network=43)
    host = sock.getsockname()[0]
    sock.close()
    return host


SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"


def zone_text(records: str) -> str:
    return SOA + records


# --- fixtures -------------------------------------------------------------------------------

GOOD_NAMES = ("mta-sts.example.test", "alias.example.test", "second.example.test")
POLICY = b"version: STSv1\nmode: enforce\nmx: mx1.example.test\nmax_age: 604800\n"
CAP = 1000


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"), "trusted")


@pytest.fixture(scope="module")
def https(ca, tmp_path_factory):
    other_ca = CertificateAuthority(tmp_path_factory.mktemp("other-ca"), "untrusted")
    server = HttpsServer(
        {
            GOOD_NAMES[0]: ca.issue(*GOOD_NAMES),
            "untrusted.example.test": other_ca.issue("untrusted.example.test"),
            "expired.example.test": ca.issue("expired.example.test", expired=True),
        }
    )
    policy = "/.well-known/mta-sts.txt"
    for name in GOOD_NAMES:
        server.routes[(name, policy)] = Reply(body=POLICY)
    for name in ("wrongname.example.test", "untrusted.example.test", "expired.example.test"):
        server.routes[(name, policy)] = Reply(body=POLICY)
    host = GOOD_NAMES[0]
    server.routes[(host, "/exact")] = Reply(body=b"x" * CAP)
    server.routes[(host, "/big")] = Reply(body=b"x" * (CAP + 1))
    server.routes[(host, "/big-stream")] = Reply(body=b"x" * (CAP * 50), send_length=False)
    server.routes[(host, "/hang")] = Reply(hang=True)
    server.routes[(host, "/trickle")] = Reply(trickle=0.2)
    server.routes[(host, "/garbage")] = Reply(raw=b"this is not HTTP\r\n\r\n")
    server.routes[(host, "/moved")] = Reply(
        301, b"", headers={"Location": "https://elsewhere.example.test/.well-known/mta-sts.txt"}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def silent(https):
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def knot(tmp_path_factory, https, silent):
    dead = free_address(https.port)
    records = f"""
mta-sts     A     {https.host}
alias       CNAME mta-sts
wrongname   A     {https.host}
untrusted   A     {https.host}
expired     A     {https.host}
second      A     {dead}
second      A     {https.host}
dead        A     {dead}
silent      A     {silent.host}
internal    A     {silent.host}
internal    A     10.0.0.7
internal    AAAA  fd00::7
noaddr      TXT   "a name without an address"
"""
    server = KnotServer(
        tmp_path_factory.mktemp("knot"),
        {
            "test": zone_text("ns A 127.0.0.1\n"),
            "example.test": zone_text(records),
            "servfail.example.test": zone_text(""),
        },
        broken=["servfail.example.test"],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session(knot):
    return DnsSession([(knot.host, knot.port)])


@pytest.fixture(autouse=True)
def trust_test_ca(settings, ca):
    settings.MAILSEC_TLS_CA_FILE = str(ca.cert_path)


def fetch(session, host, path="/.well-known/mta-sts.txt", *, port, **options):
    return net.fetch_https(session, host, path, port=port, **options)


# --- tests ----------------------------------------------------------------------------------


def test_good_fetch(session, https):
    result = fetch(session, "mta-sts.example.test", port=https.port)
    assert result.status == 200
    assert result.body == POLICY
    assert result.content_type == "text/plain"
    assert result.address == https.host
    assert result.url == f"https://mta-sts.example.test:{https.port}/.well-known/mta-sts.txt"
    result.raise_for_status()
    host, path, headers = https.requests[-1]
    assert (host, path) == ("mta-sts.example.test", "/.well-known/mta-sts.txt")
    assert headers["User-Agent"] == "mailsec"
    assert https.server_names[-1] == "mta-sts.example.test"  # SNI is the name, not the IP


def test_cname_is_followed_and_the_certificate_checked_against_the_asked_name(session, https):
    result = fetch(session, "alias.example.test", port=https.port)
    assert result.status == 200 and result.address == https.host
    assert https.server_names[-1] == "alias.example.test"


def test_body_of_exactly_the_cap_is_accepted(session, https):
    result = fetch(session, "mta-sts.example.test", "/exact", port=https.port, max_bytes=CAP)
    assert result.body == b"x" * CAP


def test_addresses_are_tried_in_turn(session, https):
    # knot sends the RRset in canonical order: the dead address (127.43/16) first.
    first = session.lookup("second.example.test", "A").rdatas[0].address
    assert first != https.host
    result = fetch(session, "second.example.test", port=https.port)
    assert result.status == 200 and result.address == https.host


def test_certificate_for_another_name(session, https):
    with pytest.raises(net.CertificateInvalid) as caught:
        fetch(session, "wrongname.example.test", port=https.port)
    message = str(caught.value)
    assert message.startswith("certificate for wrongname.example.test not valid: ")
    assert "wrongname.example.test" in message.split(": ", 1)[1]  # the mismatch is named
    assert not any(host == "wrongname.example.test" for host, _, _ in https.requests)


def test_certificate_from_an_untrusted_ca(session, https):
    with pytest.raises(net.CertificateInvalid) as caught:
        fetch(session, "untrusted.example.test", port=https.port)
    assert str(caught.value) == (
        "certificate for untrusted.example.test not valid: unable to get local issuer certificate"
    )


def test_expired_certificate(session, https):
    with pytest.raises(net.CertificateInvalid) as caught:
        fetch(session, "expired.example.test", port=https.port)
    assert str(caught.value) == (
        "certificate for expired.example.test not valid: certificate has expired"
    )


def test_the_system_store_is_used_without_a_ca_file(session, https, settings):
    settings.MAILSEC_TLS_CA_FILE = None  # our test CA is in no system store
    with pytest.raises(net.CertificateInvalid, match="unable to get local issuer"):
        fetch(session, "mta-sts.example.test", port=https.port)


def test_http_404_is_returned_and_refused_by_raise_for_status(session, https):
    result = fetch(session, "mta-sts.example.test", "/nothing-here", port=https.port)
    assert result.status == 404
    with pytest.raises(net.HttpStatusError) as caught:
        result.raise_for_status()
    assert str(caught.value) == (
        f"https://mta-sts.example.test:{https.port}/nothing-here answered HTTP 404 Not Found, "
        "not 200"
    )
    assert isinstance(caught.value, net.HttpError)


def test_redirect_is_not_followed(session, https):
    before = len(https.requests)
    result = fetch(session, "mta-sts.example.test", "/moved", port=https.port)
    assert result.status == 301
    assert len(https.requests) == before + 1
    with pytest.raises(
        net.HttpStatusError, match=r"a redirect to https://elsewhere\.example\.test/"
    ):
        result.raise_for_status()


def test_announced_body_over_the_cap_is_refused(session, https):
    with pytest.raises(net.TooLarge) as caught:
        fetch(session, "mta-sts.example.test", "/big", port=https.port, max_bytes=CAP)
    assert f"announced {CAP + 1} bytes, more than the {CAP} accepted" in str(caught.value)


def test_streamed_body_over_the_cap_is_refused_while_reading(session, https):
    with pytest.raises(net.TooLarge) as caught:
        fetch(session, "mta-sts.example.test", "/big-stream", port=https.port, max_bytes=CAP)
    assert f"sent more than {CAP} bytes" in str(caught.value)


def test_invalid_http_response(session, https):
    with pytest.raises(net.HttpError, match="sent no valid HTTP response"):
        fetch(session, "mta-sts.example.test", "/garbage", port=https.port)


def test_server_that_accepts_but_never_answers_times_out(session, silent):
    started = time.monotonic()
    with pytest.raises(net.NetTimeout) as caught:
        fetch(session, "silent.example.test", port=silent.port, timeout=0.5)
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"no TLS handshake with silent.example.test ({silent.host}) within 0.5 s"
    )


def test_server_that_never_sends_its_response_times_out(session, https):
    started = time.monotonic()
    with pytest.raises(net.NetTimeout, match=r"no complete answer .* within 0.5 s"):
        fetch(session, "mta-sts.example.test", "/hang", port=https.port, timeout=0.5)
    assert time.monotonic() - started < 2


def test_trickling_server_cannot_stretch_the_deadline(session, https):
    started = time.monotonic()
    with pytest.raises(net.NetTimeout):
        fetch(session, "mta-sts.example.test", "/trickle", port=https.port, timeout=1)
    assert time.monotonic() - started < 2


def test_connection_refused(session, https):
    with pytest.raises(net.ConnectFailed) as caught:
        fetch(session, "dead.example.test", port=https.port)
    assert str(caught.value).startswith(f"cannot connect to dead.example.test port {https.port}: ")
    assert "connection refused" in str(caught.value)


def test_name_without_address(session, https):
    with pytest.raises(net.NoAddress) as caught:
        fetch(session, "noaddr.example.test", port=https.port)
    assert str(caught.value) == "noaddr.example.test has no address (no A or AAAA record)"


def test_name_that_does_not_exist(session, https):
    with pytest.raises(net.NoAddress, match=r"nowhere.example.test does not exist \(NXDOMAIN\)"):
        fetch(session, "nowhere.example.test", port=https.port)


def test_failed_lookup_propagates_as_lookup_failed(session, https):
    with pytest.raises(LookupFailed) as caught:
        fetch(session, "mta-sts.servfail.example.test", port=https.port)
    assert caught.value.reason == "server answered SERVFAIL"
    assert not isinstance(caught.value, net.NetError)


def test_private_targets_are_refused_without_a_connection(session, silent, settings):
    """internal.example.test has a loopback address (the silent server's), 10.0.0.7 and
    fd00::7. Refused, nothing reached the silent server, and a connection to 10.0.0.7 would
    have tripped the suite's network guard instead of raising TargetRefused."""
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    silent.drain()  # what earlier tests left
    with pytest.raises(net.TargetRefused) as caught:
        fetch(session, "internal.example.test", port=silent.port)
    assert str(caught.value) == (
        "internal.example.test points only to addresses mailsec does not connect to: "
        f"10.0.0.7 (private), {silent.host} (loopback), fd00::7 (private)"
    )
    assert silent.drain() == 0


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("192.0.2.1", "private"),  # documentation range
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_refusal_reason(address, reason):
    assert net.refusal_reason(address) == reason


def test_public_addresses_are_kept_beside_refused_ones(settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    addresses = ["10.0.0.1", "192.0.32.10", "::1", "2001:500:88:200::10"]
    assert net.allowed_addresses("x.example", addresses) == ["192.0.32.10", "2001:500:88:200::10"]


def test_private_targets_allowed_by_setting(settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = True
    assert net.allowed_addresses("x.example", ["10.0.0.1"]) == ["10.0.0.1"]
