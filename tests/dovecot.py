"""A real dovecot IMAP server on loopback, with its own throwaway CA, for the mailbox tests.

    server = DovecotServer(tmp_path, separator="/")
    server.start()              # ~0.2 s: certificates, config, then waits for a real LOGIN
    server.add_user("dmarc@example.test", "s3cret")
    server.deliver("dmarc@example.test", message_bytes)
    ... connect to 127.0.0.1:server.imaps_port (implicit TLS) or server.imap_port (STARTTLS or
        plaintext), trusting server.ca_file ...
    server.stop()

Nothing system-wide is touched: base_dir, state_dir, the users file and the mail live in a
private directory under the system temp dir (see `runtime`), the listeners are on free ports.

Why the runtime directory is not under `workdir`: dovecot's auth process reads the users file
as the `dovecot` user and the mail processes run as `nobody` (mail access as root is refused), so
every directory above them must be traversable by those users; pytest's tmp_path lives under a
0700 directory of root's. Unix socket paths under base_dir also must stay short (108 bytes).
The configuration, the certificates and dovecot's log stay in `workdir` (read by root only).

Options, for the tests that need them:
- separator: the hierarchy separator of the one namespace ("/" or ".").
- disable_move / disable_uidplus: leave MOVE / UIDPLUS out of the capabilities dovecot
  advertises after login (`imap_capability`, which in 2.3 replaces the whole list; dovecot still
  executes the commands, a client that follows the capabilities never sends them).
- wrong_cert: the server presents a self-signed certificate that `ca_file` does not vouch for.
- tls=False: `ssl = no`, so no STARTTLS is offered and there is no implicit TLS listener.
- hostnames: the DNS names of the server certificate (127.0.0.1 is always in it too).
- host: the loopback address it listens on (127.0.0.1). Dovecot treats a connection whose
  source and destination addresses are equal as secure (plaintext login allowed, no
  LOGINDISABLED): the protocol probes use another address, which clients reach from 127.0.0.1.
- pop3: POP3 too, on pop3_port (STLS or plaintext) and pop3s_port (implicit TLS).
- plaintext_auth=False: `disable_plaintext_auth = yes` (LOGINDISABLED and no USER before TLS);
  the readiness check and `client()` then log in after STARTTLS.
- old_tls: TLS 1.0 and 1.1 accepted (OpenSSL security level 0).
- validity: the server certificate's (not before, not after), timedeltas from now (expiring or
  expired certificates).
- sasl_socket: an auth socket for Postfix's SASL (`sasl_path`), mode 0666.
"""

import datetime
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers import ServerProcess, need_binary, wait_for_port

HOST = "127.0.0.1"
PROBE_USER = "probe@harness.test"
EX_NOTFOUND = 68  # doveadm: nothing found (kick: the user has no connection)
# What dovecot 2.3 advertises after LOGIN by default (`imap_capability` unset).
DEFAULT_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9.-]+$")
FETCH_UID = re.compile(rb"UID (\d+)")
FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


@dataclass(frozen=True)
class StoredMessage:
    uid: int
    flags: frozenset[str]
    data: bytes


# --- certificates -----------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str, key, issuer_name: str, issuer_key, *, ca: bool, sans=(), validity=None
):
    now = datetime.datetime.now(datetime.UTC)
    before, after = validity or (datetime.timedelta(hours=-1), datetime.timedelta(days=30))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + before)
        .not_valid_after(now + after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(sans)), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(
    directory: Path, hostnames, *, wrong_cert: bool, address: str = HOST, validity=None
) -> tuple[Path, Path, Path]:
    """(CA file, server certificate, server key): the server's signed by the CA, or, with
    wrong_cert, self-signed (so the CA file does not vouch for it). `validity`: the server
    certificate's (not before, not after) as timedeltas from now (default: -1 h, +30 days)."""
    sans = [x509.DNSName(name) for name in hostnames]
    sans.append(x509.IPAddress(ipaddress.ip_address(address)))
    ca_key, server_key = _key(), _key()
    ca = _certificate("mailsec test CA", ca_key, "mailsec test CA", ca_key, ca=True)
    if wrong_cert:
        server = _certificate(
            hostnames[0], server_key, hostnames[0], server_key, ca=False, sans=sans,
            validity=validity,
        )  # fmt: skip
    else:
        server = _certificate(
            hostnames[0], server_key, "mailsec test CA", ca_key, ca=False, sans=sans,
            validity=validity,
        )  # fmt: skip
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(server_key))
    paths[2].chmod(0o600)
    return paths


# --- the server -------------------------------------------------------------------------------


def _distinct_ports(count: int) -> list[int]:
    """`count` free ports, different from each other (all held open at once while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class DovecotServer(ServerProcess):
    def __init__(
        self,
        workdir: Path,
        *,
        separator: str = "/",
        disable_move: bool = False,
        disable_uidplus: bool = False,
        wrong_cert: bool = False,
        tls: bool = True,
        hostnames: tuple[str, ...] = ("localhost",),
        users: dict[str, str] | None = None,
        host: str = HOST,
        pop3: bool = False,
        plaintext_auth: bool = True,
        old_tls: bool = False,
        sasl_socket: bool = False,
        validity=None,
    ):
        if separator not in ("/", "."):
            raise ValueError(f"separator must be '/' or '.', not {separator!r}")
        self.workdir = Path(workdir)
        self.separator = separator
        self.disable_move, self.disable_uidplus = disable_move, disable_uidplus
        self.wrong_cert, self.tls = wrong_cert, tls
        self.hostnames = tuple(hostnames)
        self.host = host
        self.pop3, self.plaintext_auth, self.old_tls = pop3, plaintext_auth, old_tls
        self.sasl_socket = sasl_socket
        self.validity = validity  # the server certificate's, see make_certificates
        # Four ports told apart (free_port() twice in a row may give the same one).
        ports = iter(_distinct_ports(4))
        self.imap_port = next(ports)
        self.imaps_port = next(ports) if tls else None
        self.pop3_port = next(ports) if pop3 else None
        self.pop3s_port = next(ports) if pop3 and tls else None
        self.users: dict[str, str] = {PROBE_USER: uuid.uuid4().hex, **(users or {})}
        self.runtime: Path | None = None
        self.ca_file: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log = None
        self._uid, self._gid, self._user = self._mail_owner()

    # --- layout --------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def users_dir(self) -> Path:
        return self.runtime / "users"

    @property
    def sasl_path(self) -> Path:
        return self.runtime / "run" / "auth-postfix"

    @property
    def capabilities(self) -> list[str]:
        """The capabilities it advertises after login."""
        hidden = {"MOVE"} if self.disable_move else set()
        hidden |= {"UIDPLUS"} if self.disable_uidplus else set()
        return [c for c in DEFAULT_CAPABILITIES.split() if c not in hidden]

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("dovecot is already running")
        dovecot = need_binary("dovecot", "dovecot-imapd")
        need_binary("doveadm", "dovecot-core")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runtime = Path(tempfile.mkdtemp(prefix="dovecot-"))
        try:
            self._prepare()
            self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
            self.process = subprocess.Popen(
                [dovecot, "-F", "-c", str(self.config_path)],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        """The runtime directory, certificates, users and configuration."""
        self.runtime.chmod(0o755)  # see the module docstring
        (self.runtime / "mail").mkdir()
        os.chown(self.runtime / "mail", self._uid, self._gid)
        self.users_dir.mkdir()
        for user in self.users:
            self._write_user(user)
        cert = key = None
        if self.tls:
            self.ca_file, cert, key = make_certificates(
                self.workdir,
                self.hostnames,
                wrong_cert=self.wrong_cert,
                address=self.host,
                validity=self.validity,
            )
        self.config_path.write_text(self._config(cert, key))

    def stop(self) -> None:
        super().stop()
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None

    # --- users and mail ------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """A new account, usable at once (see _write_user)."""
        if user in self.users:
            raise ValueError(f"{user} exists already")
        self.users[user] = password
        self._write_user(user)

    def deliver(self, user: str, message: bytes, folder: str = "INBOX") -> None:
        """Store a message in the folder (server syntax: this server's separator)."""
        self.doveadm("save", "-u", user, "-m", folder, stdin=message)

    def create_folder(self, user: str, folder: str) -> None:
        self.doveadm("mailbox", "create", "-u", user, folder)

    def kick(self, user: str) -> bool:
        """Drop every IMAP and POP3 connection of the user (the server says BYE, or -ERR over
        POP3, and closes); False when the user had none."""
        return self.doveadm("kick", user, allowed=(0, EX_NOTFOUND)) is not None

    def imap_pids(self, user: str) -> list[int]:
        """The processes serving the user's IMAP (and POP3) connections (`doveadm who`)."""
        listing = self.doveadm("who", "-1", user, allowed=(0, EX_NOTFOUND)) or ""
        rows = [line.split() for line in listing.splitlines()[1:]]
        return [int(row[2]) for row in rows if len(row) >= 3 and row[0] == user]

    @contextmanager
    def paused(self, user: str):
        """Freeze the user's IMAP and POP3 processes (SIGSTOP): their clients get no answer at all,
        like from a server that hangs, until the block ends."""
        pids = self.imap_pids(user)
        if not pids:
            raise RuntimeError(f"{user} has no IMAP connection to pause")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield pids
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def folders(self, user: str) -> set[str]:
        with self.client(user) as imap:
            typ, data = imap.list('""', "*")
            _check(typ, data, "LIST")
        # Each line: (flags) "sep" name, the name quoted or not.
        return {_unquote(line.split(b") ", 1)[1].split(b" ", 1)[1]) for line in data if line}

    def messages(self, user: str, folder: str = "INBOX") -> list[StoredMessage]:
        """Every message of the folder (server syntax), read without setting \\Seen."""
        with self.client(user) as imap:
            typ, data = imap.select(_quote(folder), readonly=True)
            _check(typ, data, f"EXAMINE {folder}")
            if int(data[0]) == 0:
                return []
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            _check(typ, data, "FETCH")
        found = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0]
            uid, flags = FETCH_UID.search(head), FETCH_FLAGS.search(head)
            names = flags.group(1).decode().split() if flags else []
            found.append(StoredMessage(int(uid.group(1)), frozenset(names), item[1]))
        return sorted(found, key=lambda m: m.uid)

    def list_folder(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The messages of the folder (server syntax), in UID order."""
        return [message.data for message in self.messages(user, folder)]

    def client(self, user: str) -> imaplib.IMAP4:
        """A logged-in stdlib client on the plaintext listener (independent of mailsec's)."""
        imap = imaplib.IMAP4(self.host, self.imap_port, timeout=10)
        try:
            if not self.plaintext_auth:
                imap.starttls(self._client_tls())
            imap.login(user, self.users[user])
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def _client_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.wrong_cert or self.validity:  # the test client only needs to log in
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context

    def doveadm(self, *args: str, stdin: bytes | None = None, allowed=(0,)) -> str | None:
        """doveadm's output; None when it exits with an allowed status other than 0."""
        result = subprocess.run(
            [need_binary("doveadm", "dovecot-core"), "-c", str(self.config_path), *args],
            input=stdin,
            capture_output=True,
            timeout=30,
        )
        if result.returncode not in allowed:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}\n{self.log()}"
            )
        return result.stdout.decode(errors="replace") if result.returncode == 0 else None

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _mail_owner() -> tuple[int, int, str]:
        """Who owns the mail: dovecot refuses mail access as root, so root's tests use nobody."""
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return entry.pw_uid, entry.pw_gid, entry.pw_name
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid, "nobody"

    def _write_user(self, user: str) -> None:
        """One passwd-file per user: dovecot checks a passwd-file for changes at most once a
        second, so a user appended to a shared file could stay unknown for up to a second; a
        file it has never opened is read at the first lookup."""
        password = self.users[user]
        if not USER_NAME.match(user) or ":" in password or "\n" in password:
            raise ValueError(f"unusable user name or password for the users file: {user!r}")
        path = self.users_dir / user
        temporary = path.with_name(f".{user}.new")
        temporary.write_text(f"{user}:{{PLAIN}}{password}::::::\n")
        temporary.chmod(0o644)
        temporary.replace(path)  # never a half-written file for the auth process

    def _config(self, cert: Path | None, key: Path | None) -> str:
        runtime = self.runtime
        lines = [
            f"protocols = imap{' pop3' if self.pop3 else ''}",
            f"listen = {self.host}",
            f"base_dir = {runtime}/run",
            f"state_dir = {runtime}/state",
            "log_path = /dev/stderr",
            "info_log_path = /dev/stderr",
            f"disable_plaintext_auth = {'no' if self.plaintext_auth else 'yes'}",
            # Every test connects from 127.0.0.1: no growing delay after the wrong-password
            # tests (anvil's auth penalty, up to 15 s), and no 2 s wait for each of them.
            "auth_failure_delay = 0",
            "service anvil {",
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
            "auth_mechanisms = plain login",
            f"first_valid_uid = {min(self._uid, 100)}",
            "mail_location = maildir:~/Maildir",
            "namespace inbox {",
            "  inbox = yes",
            f"  separator = {self.separator}",
            "}",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN {self.users_dir}/%u",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = {self.users_dir}/%u",
            f"  default_fields = uid={self._uid} gid={self._gid} home={runtime}/mail/%d/%n",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            f"    port = {self.imap_port}",
            "  }",
            "  inet_listener imaps {",
            f"    port = {self.imaps_port or 0}",
            "    ssl = yes",
            "  }",
            "}",
        ]
        if self.tls:
            lines += [
                "ssl = yes",
                f"ssl_cert = <{cert}",
                f"ssl_key = <{key}",
                "ssl_dh = </usr/share/dovecot/dh.pem",
            ]
            if self.old_tls:
                lines += ["ssl_min_protocol = TLSv1", "ssl_cipher_list = DEFAULT:@SECLEVEL=0"]
        else:
            lines.append("ssl = no")
        if self.pop3:
            lines += [
                "service pop3-login {",
                "  inet_listener pop3 {",
                f"    port = {self.pop3_port}",
                "  }",
                "  inet_listener pop3s {",
                f"    port = {self.pop3s_port or 0}",
                "    ssl = yes",
                "  }",
                "}",
            ]
        if self.sasl_socket:
            lines += [
                "service auth {",
                f"  unix_listener {self.sasl_path} {{",
                "    mode = 0666",
                "  }",
                "}",
            ]
        if self.disable_move or self.disable_uidplus:
            lines.append(f"imap_capability = {' '.join(self.capabilities)}")
        if os.geteuid() != 0:
            # Not root: dovecot cannot switch users or chroot. (Untested here: CI runs as root.)
            lines += [
                f"default_internal_user = {self._user}",
                f"default_login_user = {self._user}",
                "service anvil {\n  chroot =\n}",
                "service imap-login {\n  chroot =\n}",
            ]
        return "\n".join(lines) + "\n"

    def _wait_until_serving(self, timeout: float = 10) -> None:
        """Until a real LOGIN succeeds: a listening port alone does not mean auth is up."""
        deadline = time.monotonic() + timeout
        try:
            wait_for_port(self.imap_port, self.process, timeout, host=self.host)
        except RuntimeError as exc:
            raise RuntimeError(f"dovecot did not start ({exc}):\n{self.log()}") from None
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {self.process.returncode}:\n{self.log()}"
                )
            try:
                with self.client(PROBE_USER) as imap:
                    imap.noop()
                return
            except (OSError, imaplib.IMAP4.error) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dovecot accepted no login within {timeout} s ({exc}):\n{self.log()}"
                    ) from None
                time.sleep(0.02)


def _check(typ: str, data, what: str) -> None:
    if typ != "OK":
        raise RuntimeError(f"{what} failed: {typ} {data}")


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(name: bytes) -> str:
    text = name.decode()
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text
