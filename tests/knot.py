"""An authoritative knot server on loopback serving test zones, DNSSEC-signed where asked.

    zones = {"test": TEST_ZONE, "signed.test": SIGNED_ZONE}
    server = KnotServer(tmp_path, zones, signed=["test", "signed.test"])
    server.start()          # ~0.1 s, plus ~30 ms of keymgr per signed zone
    ... query server.host:server.port, validate from server.trust_anchors ...
    server.stop()

Signed zones get one ECDSA P-256 CSK each, made with keymgr before knotd starts, so that their
DS can be written into the parent zone's file: knot never rolls it (manual key management), and
its signatures last ten years, so nothing changes under a running test.

Bogus zones are signed exactly like signed ones, but the DS published for them (in the parent,
or in `trust_anchors` when they have no signed parent) carries the real key tag and algorithm
with the digest inverted bit by bit. A validator that matches on the key tag alone is fooled; one
that checks the digest, as it must, finds no DNSKEY for the DS and calls the zone bogus.

Broken zones are configured but their file gets a line that does not parse, so knot loads no
zone for them and answers SERVFAIL for every name in them.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from bench.dns_forwarder import _loopback
from tests.servers import ServerProcess, need_binary

DS_TTL = 3600
# Unix socket paths are capped at 108 bytes; pytest's tmp_path can be longer, and knotd exits at
# once when it cannot bind its control socket.
MAX_SOCKET_PATH = 100
ROOT_ZONE = ". SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n. NS ns.test.\n"
BROKEN_LINE = "broken-on-purpose IN A not-an-address  ; makes knot refuse to load this zone\n"


def _free_port(address: str) -> int:
    """A port free for both UDP and TCP, since knot listens on both."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {address}")


def _origin(zone: str) -> str:
    """The zone's name without the trailing dot: "" for the root."""
    name = zone.strip().rstrip(".").lower()
    if name:
        dns.name.from_text(name)  # rejects what is no domain name
    return name


def _file(zone: str) -> str:
    return f"{zone or 'root'}.zone"


class KnotServer(ServerProcess):
    def __init__(
        self,
        workdir: Path,
        zones: dict[str, str],
        *,
        signed: Iterable[str] = (),
        bogus: Iterable[str] = (),
        broken: Iterable[str] = (),
        address: str = "127.0.0.1",
        port: int | None = None,
    ):
        self.workdir = Path(workdir)
        self.zones = {_origin(zone): text for zone, text in zones.items()}
        if not self.zones:
            raise ValueError("KnotServer needs at least one zone")
        # As on the internet, the root zone exists (mailsec asks its SOA and NS to tell a working
        # resolver from a lying one), and names outside the test zones do not (NXDOMAIN).
        self.zones.setdefault("", ROOT_ZONE)
        self.signed = {_origin(zone) for zone in signed}
        self.bogus = {_origin(zone) for zone in bogus}
        self.broken = {_origin(zone) for zone in broken}
        for label, group in (
            ("signed", self.signed),
            ("bogus", self.bogus),
            ("broken", self.broken),
        ):
            unknown = group - self.zones.keys()
            if unknown:
                raise ValueError(f"{label} zones not in zones: {sorted(unknown)}")
        if self.signed & self.bogus:
            raise ValueError(f"zones both signed and bogus: {sorted(self.signed & self.bogus)}")
        self.host = _loopback(address, "address")
        self.port = port or _free_port(self.host)
        self.trust_anchors: list[str] = []
        self.process: subprocess.Popen | None = None
        self._ds: dict[str, list[str]] = {}
        self._socket_dir: str | None = None
        self._log = None

    # --- layout --------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "knot.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "knot.log"

    def parent(self, zone: str) -> str | None:
        """The closest enclosing zone this server also serves, where a DS for `zone` belongs."""
        labels = _origin(zone).split(".")
        for i in range(1, len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self.zones:
                return candidate
        return None

    def ds_records(self, zone: str) -> list[str]:
        """The DS records published for `zone` (for a bogus zone, the deliberately wrong one)."""
        zone = _origin(zone)
        if zone not in self.signed | self.bogus:
            raise ValueError(f"{zone} is neither signed nor bogus: it has no DS")
        if zone not in self._ds:
            raise RuntimeError("the keys are made by start(): call it first")
        return list(self._ds[zone])

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("knot is already running")
        knotd = need_binary("knotd", "knot")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "db").mkdir(exist_ok=True)
        (self.workdir / "zones").mkdir(exist_ok=True)
        self.config_path.write_text(self._config())
        self._make_keys()
        self._write_zones()
        self.trust_anchors = [
            record
            for zone in sorted(self.signed | self.bogus)
            if self.parent(zone) not in self.signed | self.bogus
            for record in self._ds[zone]
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [knotd, "-c", str(self.config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def set_records(self, zone: str, owner: str, rdtype: str, *rdatas: str, ttl: int = 300):
        """Replace the `rdtype` records of `owner` (absolute, in `zone`) while knot runs, in
        one knotc transaction: the next query sees the new records (none when no rdatas)."""
        zone = f"{_origin(zone)}."
        self._knotc("zone-begin", zone)
        try:
            if self._knotc("zone-get", zone, owner, rdtype, check=False).strip():
                self._knotc("zone-unset", zone, owner, rdtype)
            for rdata in rdatas:
                self._knotc("zone-set", zone, owner, str(ttl), rdtype, rdata)
            self._knotc("zone-commit", zone)
        except BaseException:
            self._knotc("zone-abort", zone, check=False)
            raise

    def _knotc(self, *args: str, check: bool = True) -> str:
        knotc = need_binary("knotc", "knot")
        result = subprocess.run(
            [knotc, "-c", str(self.config_path), *args], capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"knotc {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout if result.returncode == 0 else ""

    def stop(self) -> None:
        super().stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # --- internals -----------------------------------------------------------------------

    def _control_socket(self) -> str:
        path = str(self.workdir.resolve() / "knot.sock")
        if len(path) <= MAX_SOCKET_PATH:
            return path
        self._socket_dir = tempfile.mkdtemp(prefix="knot-")
        return f"{self._socket_dir}/knot.sock"

    def _config(self) -> str:
        workdir = self.workdir.resolve()
        lines = [
            "server:",
            f'    rundir: "{workdir}"',
            f'    listen: [ "{self.host}@{self.port}" ]',
            "control:",
            f'    listen: "{self._control_socket()}"',
            "log:",
            "  - target: stderr",
            "    any: info",
            "database:",
            f'    storage: "{workdir / "db"}"',
            "policy:",
            "  - id: test",
            "    algorithm: ecdsap256sha256",
            "    single-type-signing: on",
            # Keys come from keymgr before start (their DS is already in the parent's file):
            # knot must neither replace nor roll them.
            "    manual: on",
            "    rrsig-lifetime: 3650d",
            "template:",
            "  - id: default",
            f'    storage: "{workdir / "zones"}"',
            # Never write the signed zone back, and keep no journal: every start serves
            # exactly the zone texts given, whatever a previous start left in the workdir.
            "    zonefile-sync: -1",
            "    journal-content: none",
            "zone:",
        ]
        for zone in sorted(self.zones):
            lines += [f'  - domain: "{zone}."', f'    file: "{_file(zone)}"']
            if zone in self.signed | self.bogus:
                lines += ["    dnssec-signing: on", "    dnssec-policy: test"]
        return "\n".join(lines) + "\n"

    def _keymgr(self, zone: str, *args: str) -> str:
        keymgr = need_binary("keymgr", "knot")
        result = subprocess.run(
            [keymgr, "-c", str(self.config_path), f"{zone}.", *args],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"keymgr {zone} {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def _make_keys(self) -> None:
        for zone in sorted(self.signed | self.bogus):
            if not self._keymgr(zone, "list").strip():  # a restart keeps the keys it has
                self._keymgr(zone, "generate", "algorithm=ecdsap256sha256", "ksk=yes", "zsk=yes")
            records = []
            # keymgr prints "zone. DS <tag> 13 2 <hex>" and the same with digest type 4.
            for line in self._keymgr(zone, "ds").splitlines():
                fields = line.split()
                if len(fields) == 6 and fields[1] == "DS" and fields[4] == "2":
                    tag, algorithm, digest = fields[2], fields[3], fields[5]
                    if zone in self.bogus:
                        digest = f"{int(digest, 16) ^ ((1 << 4 * len(digest)) - 1):0{len(digest)}x}"
                    records.append(f"{zone}. {DS_TTL} IN DS {tag} {algorithm} 2 {digest.upper()}")
            if not records:
                raise RuntimeError(f"keymgr printed no SHA-256 DS for {zone}")
            self._ds[zone] = records

    def _write_zones(self) -> None:
        for zone, text in self.zones.items():
            head = f"$ORIGIN {zone}.\n"
            if "$TTL" not in text.upper():
                head += "$TTL 300\n"
            body = text if text.endswith("\n") else text + "\n"
            children = [
                child
                for child in sorted(self.signed | self.bogus)
                if child != zone and self.parent(child) == zone
            ]
            for child in children:
                # Absolute owner names and TTLs: the caller's text may change $ORIGIN or $TTL.
                body += "".join(f"{record}\n" for record in self._ds[child])
            if zone in self.broken:
                body += BROKEN_LINE
            (self.workdir / "zones" / _file(zone)).write_text(head + body)

    def _wait_until_serving(self, timeout: float = 10) -> None:
        """Until knot answers the SOA of every zone it should load, over UDP and TCP."""
        pending = sorted(self.zones.keys() - self.broken)
        deadline = time.monotonic() + timeout
        while pending:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"knotd exited with status {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"knot did not serve {pending} within {timeout} s:\n{self.log()}"
                )
            query = dns.message.make_query(f"{pending[0]}.", dns.rdatatype.SOA)
            try:
                answer = dns.query.udp(query, self.host, port=self.port, timeout=0.1)
            except (dns.exception.Timeout, OSError):
                answer = None
            if answer is not None and answer.rcode() == dns.rcode.NOERROR and answer.answer:
                pending.pop(0)
            else:
                time.sleep(0.01)
        # TCP too: a port taken by someone else over TCP would otherwise go unnoticed.
        dns.query.tcp(
            dns.message.make_query(f"{sorted(self.zones)[0]}.", dns.rdatatype.SOA),
            self.host,
            port=self.port,
            timeout=2,
        )
