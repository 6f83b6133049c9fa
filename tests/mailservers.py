"""Real mail servers on loopback for the protocol probes (the "mail lab").

    lab = MailLab(workdir)
    lab.start()                  # ~2 s: dovecot x4, then one Postfix with a listener per case
    lab.endpoints["good"]        # Endpoint: host, address, port, service, TLS mode -> .target()
    lab.ca_bundle                # PEM of every CA that vouches for a lab certificate
    lab.stop()

What runs (every address is on loopback; Postfix binds port 25, so the tests run as root):

- Postfix, one instance (own configuration directory, own queue), one listener per case:
  good (127.0.30.1:25 STARTTLS; :587 submission, AUTH only after STARTTLS; :465 implicit TLS),
  plain (127.0.30.2:25, no TLS), expired (127.0.30.3:25, expired certificate), wrongname
  (127.0.30.4:25, certificate for other-name.example.test), relay (127.0.30.5:25, an open
  relay through mynetworks), authplain (127.0.30.6:587, AUTH before STARTTLS), tls10
  (127.0.30.7:25, accepts TLS 1.0 and 1.1 at OpenSSL security level 0), untrusted
  (127.0.30.8:25, certificate of a CA nobody trusts), banner (127.0.30.9:25, greets as
  mail.elsewhere.test), submission-notls (127.0.30.10:587, AUTH and no TLS at all);
  expiring (127.0.34.1:25 and :587, a certificate that expires in 7 days), submission-tls10
  (127.0.34.2:587, accepts TLS 1.0 and 1.1), submission-wrongname (127.0.34.3:587, certificate
  for other-name.example.test).
  SASL (for AUTH) through the first dovecot's auth socket.
- dovecot, IMAP and POP3 (ports are free ports, as SRV records allow any): secure
  (127.0.31.1: LOGINDISABLED / no USER before TLS), plain (127.0.31.2: plaintext login allowed),
  notls (127.0.31.3: no TLS at all), oldtls (127.0.31.4: accepts TLS 1.0); with LOGINDISABLED /
  no USER before TLS and a certificate problem each: expiring (127.0.34.4, expires in 7 days),
  rogue (127.0.34.5, self-signed), wrongname (127.0.34.6, for other-name.example.test),
  expired (127.0.34.7). Endpoints
  "imap-<case>", "imaps-<case>", "pop3-<case>", "pop3s-<case>" (no TLS ones for notls).
- tarpit (127.0.32.1:25): accepts connections and never says a word; counts them.
- refused (127.0.32.2:25): nothing listens, the kernel answers with a reset.
- blackhole (127.0.32.3:25): a listener whose backlog is kept full, so new connection attempts
  get no answer at all: a connect timeout, as from a firewall that drops packets.
- scripted servers on 127.0.33.1-5:25 (`SCRIPTED`): a 554 refusal greeting ("refusing"), a
  greeting line that never ends ("endless"), a close before any greeting ("hangup"), a close
  after the greeting ("dropout"), multi-line replies with AUTH and no STARTTLS ("multiline"),
  STARTTLS offered and then refused ("tlsrefused", 127.0.33.6), an answer to EHLO that is no
  SMTP reply ("garbled", 127.0.33.7), EHLO refused and HELO accepted ("heloonly", 127.0.33.8),
  EHLO and HELO refused ("nohelo", 127.0.33.9).

The addresses are fixed (tests name them), so one lab runs on a machine at a time: `start()`
waits for a lock file (LOCK_PATH) that another test run's lab holds.

Leaf keys are derived from the host name (`leaf_key`), so a TLSA record of selector 1 (the
public key) can be written into a zone before the servers start: `spki_sha256(host)`.
The silent and scripted servers live in tests/silent_servers.py.
Certificates are made by `LabCA` (the "mailsec lab CA", tests/lab_certs.py); a "rogue" one signs
the untrusted one.
The names live in `probes.test` (`lab_zones()`, with PTR records for 127.0.30.0/24).
"""

import datetime
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from domains.probes.results import Service, Target, TlsMode
from tests.dovecot import DovecotServer
from tests.lab_certs import EXPIRING_IN, LabCA, leaf_key, spki_der, spki_sha256  # noqa: F401
from tests.servers import ServerProcess, need_binary
from tests.silent_servers import Blackhole, Scripted, Tarpit

ZONE = "probes.test"
LOCK_PATH = Path(tempfile.gettempdir()) / "mailsec-mail-lab.lock"
SMTP, SUBMISSION, IMAP, POP3 = Service.SMTP, Service.SUBMISSION, Service.IMAP, Service.POP3
STARTTLS, IMPLICIT = TlsMode.STARTTLS, TlsMode.IMPLICIT
OLD_TLS = {
    "smtpd_tls_protocols": ">=TLSv1",
    "smtpd_tls_mandatory_protocols": ">=TLSv1",
    "smtpd_tls_ciphers": "medium",
    "tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0",
}


# --- endpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    address: str
    port: int
    service: Service
    tls_mode: TlsMode

    def target(self, host: str | None = None) -> Target:
        return Target(host or self.host, self.address, self.port, self.service, self.tls_mode)


@dataclass(frozen=True)
class SmtpCase:
    """One Postfix listener: where, what, which certificate, and master.cf overrides."""

    name: str
    host: str
    address: str
    port: int = 25
    service: Service = SMTP
    tls_mode: TlsMode = STARTTLS
    cert_names: tuple[str, ...] = ()  # () = the host itself
    expired: bool = False
    expiring: bool = False  # a certificate valid for EXPIRING_IN more days
    rogue: bool = False  # signed by a CA that is not in the bundle
    options: dict = field(default_factory=dict)


SUBMIT = {"smtpd_sasl_auth_enable": "yes"}
SMTP_CASES = [
    SmtpCase("good", "mx-good.probes.test", "127.0.30.1"),
    SmtpCase(
        "good-submission", "mx-good.probes.test", "127.0.30.1", 587, SUBMISSION, options=SUBMIT
    ),
    SmtpCase(
        "good-submissions",
        "mx-good.probes.test",
        "127.0.30.1",
        465,
        SUBMISSION,
        IMPLICIT,
        options={**SUBMIT, "smtpd_tls_wrappermode": "yes", "smtpd_tls_security_level": "encrypt"},
    ),
    SmtpCase(
        "plain", "mx-plain.probes.test", "127.0.30.2", options={"smtpd_tls_security_level": "none"}
    ),
    SmtpCase("expired", "mx-expired.probes.test", "127.0.30.3", expired=True),
    SmtpCase(
        "wrongname",
        "mx-wrongname.probes.test",
        "127.0.30.4",
        cert_names=("other-name.example.test",),
    ),
    SmtpCase("relay", "mx-relay.probes.test", "127.0.30.5", options={"mynetworks": "127.0.0.0/8"}),
    SmtpCase(
        "authplain",
        "submit-authplain.probes.test",
        "127.0.30.6",
        587,
        SUBMISSION,
        options={**SUBMIT, "smtpd_tls_auth_only": "no"},
    ),
    SmtpCase("tls10", "mx-tls10.probes.test", "127.0.30.7", options=OLD_TLS),
    SmtpCase("untrusted", "mx-untrusted.probes.test", "127.0.30.8", rogue=True),
    SmtpCase(
        "banner",
        "mx-banner.probes.test",
        "127.0.30.9",
        options={"smtpd_banner": "mail.elsewhere.test ESMTP"},
    ),
    SmtpCase(
        "submission-notls",
        "submit-notls.probes.test",
        "127.0.30.10",
        587,
        SUBMISSION,
        options={**SUBMIT, "smtpd_tls_security_level": "none", "smtpd_tls_auth_only": "no"},
    ),
]
# Added for the certificate findings of the access services (new addresses: 127.0.34.x).
SMTP_CASES += [
    SmtpCase("expiring", "mx-expiring.probes.test", "127.0.34.1", expiring=True),
    SmtpCase(
        "expiring-submission",
        "mx-expiring.probes.test",
        "127.0.34.1",
        587,
        SUBMISSION,
        expiring=True,
        options=SUBMIT,
    ),
    SmtpCase(
        "submission-tls10",
        "submit-tls10.probes.test",
        "127.0.34.2",
        587,
        SUBMISSION,
        options={**SUBMIT, **OLD_TLS},
    ),
    SmtpCase(
        "submission-wrongname",
        "submit-wrongname.probes.test",
        "127.0.34.3",
        587,
        SUBMISSION,
        cert_names=("other-name.example.test",),
        options=SUBMIT,
    ),
]
DOVECOT_CASES = {  # name: (address, host name, DovecotServer options)
    "secure": ("127.0.31.1", "mail.probes.test", {"plaintext_auth": False, "sasl_socket": True}),
    "plain": ("127.0.31.2", "mail-plain.probes.test", {}),
    "notls": ("127.0.31.3", "mail-notls.probes.test", {"tls": False}),
    "oldtls": ("127.0.31.4", "mail-oldtls.probes.test", {"old_tls": True}),
    "expiring": (
        "127.0.34.4",
        "mail-expiring.probes.test",
        {"plaintext_auth": False, "validity": (-datetime.timedelta(days=60), EXPIRING_IN)},
    ),
    "rogue": (
        "127.0.34.5",
        "mail-rogue.probes.test",
        {"plaintext_auth": False, "wrong_cert": True},
    ),
    "wrongname": (
        "127.0.34.6",
        "mail-wrongname.probes.test",
        {"plaintext_auth": False, "hostnames": ("other-name.example.test",)},
    ),
    "expired": (
        "127.0.34.7",
        "mail-expired.probes.test",
        {
            "plaintext_auth": False,
            "validity": (-datetime.timedelta(days=90), -datetime.timedelta(days=2)),
        },
    ),
}
TARPIT, REFUSED, BLACKHOLE = "127.0.32.1", "127.0.32.2", "127.0.32.3"
SCRIPTED = {  # name: (address, greeting, replies to the lines received, close at once)
    "refusing": ("127.0.33.1", b"554 5.7.1 no service for you\r\n", (), False),
    "endless": ("127.0.33.2", b"220 " + b"x" * 20000, (), False),
    "hangup": ("127.0.33.3", b"", (), True),
    "dropout": ("127.0.33.4", b"220 dropout.probes.test ESMTP\r\n", (), False),
    "multiline": (
        "127.0.33.5",
        b"220-multiline.probes.test ESMTP\r\n220-second line\r\n220 last\r\n",
        (
            b"250-multiline.probes.test\r\n250-AUTH LOGIN\r\n250 8BITMIME\r\n",
            b"250 ok\r\n",
            b"550 5.7.1 relaying denied\r\n",
            b"250 ok\r\n",
            b"221 bye\r\n",
        ),
        False,
    ),
}
SCRIPTED["tlsrefused"] = (  # offers STARTTLS, then refuses it
    "127.0.33.6",
    b"220 tlsrefused.probes.test ESMTP\r\n",
    (
        b"250-tlsrefused.probes.test\r\n250 STARTTLS\r\n",
        b"454 4.7.0 TLS not available\r\n",
        b"250 ok\r\n",
        b"554 5.7.1 relaying denied\r\n",
        b"250 ok\r\n",
        b"221 bye\r\n",
    ),
    False,
)
SCRIPTED["garbled"] = (  # greets, then answers EHLO with something that is no SMTP reply
    "127.0.33.7",
    b"220 garbled.probes.test ESMTP\r\n",
    (b"hello there\r\n",),
    False,
)
SCRIPTED["heloonly"] = (  # refuses EHLO (an old server), accepts HELO, denies relaying
    "127.0.33.8",
    b"220 heloonly.probes.test SMTP\r\n",
    (
        b"502 5.5.2 Error: command not recognized\r\n",
        b"250 heloonly.probes.test\r\n",
        b"250 ok\r\n",
        b"554 5.7.1 relaying denied\r\n",
        b"250 ok\r\n",
        b"221 bye\r\n",
    ),
    False,
)
SCRIPTED["nohelo"] = (  # refuses EHLO and HELO alike
    "127.0.33.9",
    b"220 nohelo.probes.test SMTP\r\n",
    (b"502 5.5.2 no\r\n", b"550 5.7.1 go away\r\n", b"221 bye\r\n"),
    False,
)
PTR = {  # address -> PTR name (plain, 127.0.30.2, has none)
    "127.0.30.1": "mx-good.probes.test",
    "127.0.30.3": "mx-expired.probes.test",
    "127.0.30.9": "mx-banner.probes.test",
    "127.0.30.5": "not-forward.probes.test",  # a PTR whose name has no address: no FCrDNS
}


def lab_zones() -> dict[str, str]:
    """probes.test (every lab host's A record) and the reverse zone of 127.0.30.0/24."""
    soa = (
        "@ SOA ns.probes.test. hostmaster.probes.test. 1 3600 600 86400 300\n@ NS ns.probes.test.\n"
    )
    hosts = {case.host: case.address for case in SMTP_CASES}
    hosts |= {host: address for address, host, _ in DOVECOT_CASES.values()}
    hosts |= {"tarpit.probes.test": TARPIT, "refused.probes.test": REFUSED}
    hosts |= {"blackhole.probes.test": BLACKHOLE, "ns.probes.test": "127.0.0.1"}
    forward = "".join(f"{host}. A {address}\n" for host, address in sorted(hosts.items()))
    reverse = "".join(f"{a.rsplit('.', 1)[1]} PTR {name}.\n" for a, name in PTR.items())
    return {ZONE: soa + forward, "30.0.127.in-addr.arpa": soa + reverse}


# --- Postfix --------------------------------------------------------------------------------

SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


ROOT_PREFIX = "mailsec-postfix-"
OWNER_FILE = "owner.pid"  # the test process that started the instance


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostfixServer(ServerProcess):
    """One Postfix instance with its own configuration directory and queue (under a private
    directory of the system temp dir: Postfix's processes run as `postfix` and must reach it),
    one smtpd listener per case."""

    def __init__(self, cases: list[SmtpCase], certificates: dict, *, sasl_path: Path | None):
        self.cases, self.certificates, self.sasl_path = cases, certificates, sasl_path
        self.root: Path | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "maillog"

    def start(self) -> None:
        self.postfix = need_binary("postfix", "postfix")
        self._stop_orphans()
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self.root.chmod(0o755)
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        (self.root / "etc").mkdir()
        (self.root / "spool").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix")
        (self.root / "etc" / "main.cf").write_text(self._main_cf())
        (self.root / "etc" / "master.cf").write_text(self._master_cf())
        try:
            self._postfix("set-permissions")
            self._postfix("start")
            for case in self.cases:
                _wait_for(case.address, case.port, 10, self.log)
        except BaseException:
            self.stop()
            raise

    def _stop_orphans(self) -> None:
        """Postfix's master runs detached: a test run killed before its teardown leaves it
        listening on the lab's ports. Stop every lab instance whose test process is gone (the
        instances of test runs still going, in other checkouts, are left alone)."""
        for root in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
            try:
                owner = int((root / OWNER_FILE).read_text())
            except (OSError, ValueError):
                continue
            if _process_alive(owner):
                continue
            if (root / "spool" / "pid" / "master.pid").exists():
                subprocess.run(
                    [self.postfix, "-c", str(root / "etc"), "stop"],
                    capture_output=True,
                    timeout=60,
                )
            shutil.rmtree(root, ignore_errors=True)

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [self.postfix, "-c", str(self.root / "etc"), command],
            capture_output=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postfix {command} failed: {result.stderr!r}\n{self.log()}")

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.root / "spool" / "pid" / "master.pid").exists():
            subprocess.run(
                [self.postfix, "-c", str(self.root / "etc"), "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _main_cf(self) -> str:
        cert, key = self.certificates["good"]
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {self.root}/spool",
            f"data_directory = {self.root}/data",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "inet_interfaces = loopback-only",
            f"maillog_file = {self.root}/maillog",
            "maillog_file_prefixes = /tmp, /var",
            "smtpd_peername_lookup = no",
            "smtpd_error_sleep_time = 0",
            "mydestination =",
            "mynetworks = 192.0.2.1/32",  # nobody's: relaying only where a listener says
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "smtp_dns_support_level = disabled",
            "smtpd_tls_security_level = may",
            "smtpd_tls_auth_only = yes",
            # TLS 1.2 and up, except where a case says otherwise (tls10).
            "smtpd_tls_protocols = >=TLSv1.2",
            "smtpd_tls_mandatory_protocols = >=TLSv1.2",
            f"smtpd_tls_cert_file = {cert}",
            f"smtpd_tls_key_file = {key}",
        ]
        if self.sasl_path is not None:
            lines += ["smtpd_sasl_type = dovecot", f"smtpd_sasl_path = {self.sasl_path}"]
        return "\n".join(lines) + "\n"

    def _master_cf(self) -> str:
        lines = []
        for case in self.cases:
            cert, key = self.certificates[case.name]
            options = {
                "myhostname": case.host,
                "smtpd_tls_cert_file": str(cert),
                "smtpd_tls_key_file": str(key),
                **case.options,
            }
            overrides = " ".join(f"-o {{ {k} = {v} }}" for k, v in options.items())
            lines.append(f"{case.address}:{case.port} inet n - n - - smtpd {overrides}")
        return "\n".join(lines) + "\n" + SERVICES


def _wait_for(address: str, port: int, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {address}:{port}:\n{log()}") from None
            time.sleep(0.05)


# --- the lab --------------------------------------------------------------------------------


class MailLab:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.endpoints: dict[str, Endpoint] = {}
        self.dovecots: dict[str, DovecotServer] = {}
        self.postfix: PostfixServer | None = None
        self.tarpit: Tarpit | None = None
        self.blackhole: Blackhole | None = None
        self.scripted: list[Scripted] = []
        self._lock_file = None
        self.ca_bundle = self.workdir / "ca-bundle.pem"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock_addresses()
        try:
            self._start_dovecots()
            self._start_postfix()
            self.tarpit = Tarpit(TARPIT)
            self.blackhole = Blackhole(BLACKHOLE)
            self._start_scripted()
        except BaseException:
            self.stop()
            raise
        for name, address in (("tarpit", TARPIT), ("refused", REFUSED), ("blackhole", BLACKHOLE)):
            self.endpoints[name] = Endpoint(name, f"{name}.{ZONE}", address, 25, SMTP, STARTTLS)
        bundle = [self.ca.cert_path.read_bytes()]
        bundle += [d.ca_file.read_bytes() for d in self.dovecots.values() if d.ca_file]
        self.ca_bundle.write_bytes(b"".join(bundle))

    def _lock_addresses(self, timeout: float = 1800) -> None:
        """The lab's addresses are fixed (tests name them), so two test runs on one machine
        (two worktrees, or a helper beside the lead) would fight over them: the second waits
        for the first's lab to stop."""
        self._lock_file = open(LOCK_PATH, "a")  # noqa: SIM115  (closed in stop())
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test run holds {LOCK_PATH}") from None
                time.sleep(0.5)

    def _start_scripted(self) -> None:
        for name, (address, greeting, replies, close) in SCRIPTED.items():
            self.scripted.append(Scripted(address, 25, greeting, replies, close=close))
            self.endpoints[name] = Endpoint(name, f"{name}.{ZONE}", address, 25, SMTP, STARTTLS)

    def _start_dovecots(self) -> None:
        for name, (address, host, options) in DOVECOT_CASES.items():
            server = DovecotServer(
                self.workdir / f"dovecot-{name}",
                host=address,
                **{"hostnames": (host,), "pop3": True, **options},
            )
            self.dovecots[name] = server
            server.start()
            ports = [
                ("imap", server.imap_port, IMAP, STARTTLS),
                ("imaps", server.imaps_port, IMAP, IMPLICIT),
                ("pop3", server.pop3_port, POP3, STARTTLS),
                ("pop3s", server.pop3s_port, POP3, IMPLICIT),
            ]
            for kind, port, service, mode in ports:
                if port:
                    key = f"{kind}-{name}"
                    self.endpoints[key] = Endpoint(key, host, address, port, service, mode)

    def _start_postfix(self) -> None:
        self.ca = LabCA(self.workdir, "lab")
        rogue = LabCA(self.workdir, "rogue")
        certificates = {}
        for case in SMTP_CASES:
            ca = rogue if case.rogue else self.ca
            names = case.cert_names or (case.host,)
            certificates[case.name] = ca.issue(
                case.host, names, expired=case.expired, expiring=case.expiring
            )
            self.endpoints[case.name] = Endpoint(
                case.name, case.host, case.address, case.port, case.service, case.tls_mode
            )
        self.postfix = PostfixServer(
            SMTP_CASES, certificates, sasl_path=self.dovecots["secure"].sasl_path
        )
        self.postfix.start()

    def stop(self) -> None:
        servers = (self.tarpit, self.blackhole, self.postfix, *self.dovecots.values())
        running = [server for server in (*servers, *self.scripted) if server is not None]
        # Side by side: dovecot takes about a second to stop, and the lab runs nine of them.
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(lambda server: server.stop(), running))
        self.tarpit = self.blackhole = self.postfix = None
        self.dovecots, self.scripted = {}, []
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None


# --- fixtures (imported by tests/conftest.py, so every test directory shares one lab) ---------


@pytest.fixture(scope="session")
def mail_lab(tmp_path_factory):
    """The whole lab, started once per test session (see the module docstring)."""
    lab = MailLab(tmp_path_factory.mktemp("maillab"))
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def lab_trust(settings, mail_lab):
    """The lab with MAILSEC_TLS_CA_FILE pointing at its CAs (the rogue CA left out)."""
    settings.MAILSEC_TLS_CA_FILE = str(mail_lab.ca_bundle)
    return mail_lab
