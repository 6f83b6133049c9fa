"""The one place that talks DNS.

A `DnsSession` is one check run's view of DNS: every (name, type) is asked once and its outcome
(an answer, NXDOMAIN, no data, or a failure) remembered, so the checks can share lookups and be
run again without new traffic. Lookups may be sent ahead (`prefetch`): they all travel through one
UDP transport per process, so hundreds can be in flight at once, which is what makes checks fast
over a slow network. Queries leave from a small pool of sockets on random ports, each port used
for a few dozen queries only, so a forged answer must guess the port as well as the query id.
checkdmarc gets the same session through `session.checkdmarc_resolver`, so its queries are
counted, shared and bounded like ours.

A failure (timeout, SERVFAIL, REFUSED, network error) is never turned into "no such record":
`lookup()` raises `LookupFailed`, and every failure is noted for the category that met it,
with what it voids (`optional`: one verdict; otherwise the category). `failing_zones` says
which zone a failure points at, `resolver_problem` whether the resolver can be believed at all.
Nothing outlives the session (one run, or one batch): checkdmarc's own process-wide cache is
turned off below, and its lookups are handed to the session.
"""

import contextlib
import ipaddress
import os
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import checkdmarc.utils
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.utils.translation import gettext_noop

from domains.messages import Message, msg

ATTEMPT_TIMEOUT = 1.0  # one UDP try; then the next server, or the same one again
LIFETIME = 3.0  # the most one lookup may take, all tries included
EDNS_PAYLOAD = 1232
# Answers that mean "ask the next server" (FORMERR, SERVFAIL, NOTIMP, REFUSED).
TRY_NEXT_RCODES = {1, 2, 4, 5}
# Source ports: queries go round a pool of this many sockets per address family, and a socket
# is replaced by a new one (a new random port from the kernel) after QUERIES_PER_PORT sends; it
# is closed once the queries it sent have their answers or have timed out. Past MAX_SOCKETS
# open per family (a flood of slow lookups), sockets serve on rather than multiply.
PORT_POOL = 8
QUERIES_PER_PORT = 32
MAX_SOCKETS = 256


def _question_section(wire: bytes) -> bytes:
    """The question section of a one-question message: the name's labels, type and class."""
    end = 12
    while wire[end]:
        end += 1 + wire[end]
    return wire[12 : end + 5]


class _Pending:
    __slots__ = (
        "deadline", "future", "lifetime", "next_send", "ports", "question", "servers", "tries",
        "wire",
    )  # fmt: skip

    def __init__(self, wire: bytes, future: Future, servers: list[tuple[str, int]], lifetime):
        self.wire = wire
        self.question = _question_section(wire).lower()
        self.servers = servers
        self.tries = 0
        self.future = future
        self.lifetime = lifetime
        self.deadline = time.monotonic() + lifetime
        self.next_send = 0.0
        self.ports: list[_Port] = []  # every socket a try of it left from


class _Port:
    """One UDP socket on a port the kernel chose at random, and the queries sent from it."""

    __slots__ = ("outstanding", "retired", "sent", "sock")

    def __init__(self, family: int):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104
        self.sent = 0
        self.retired = False
        self.outstanding: set[int] = set()  # ids of the queries awaiting an answer here


class UdpTransport:
    """Every lookup of the process goes out through this transport: one thread that sends,
    retries, fails over and matches answers to queries, over a small rotating pool of UDP
    sockets per address family (see PORT_POOL).

    Thousands of lookups may be in flight at once, and none costs a thread or a socket of its
    own: on a fast network the cost of a lookup is then mostly parsing, and on a slow one
    waiting, which all the checks do side by side. An answer counts only if it comes from the
    server asked, to a port the query left from, with the query's id and question."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._outbox: list[_Pending] = []
        self._selector = selectors.DefaultSelector()
        self._pools: dict[int, list[_Port]] = {socket.AF_INET: [], socket.AF_INET6: []}
        self._open: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 0}
        self._turn = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        threading.Thread(target=self._loop, name="dns-transport", daemon=True).start()

    def submit_many(
        self, queries: list[tuple[bytes, Future]], servers: list[tuple[str, int]], lifetime: float
    ) -> None:
        """Send each query's wire; its future gets (answer wire, server) or the failure."""
        pendings = [_Pending(wire, future, servers, lifetime) for wire, future in queries]
        with self._lock:
            self._outbox.extend(pendings)
        self._wake_w.send(b"\0")

    def _loop(self) -> None:
        while True:
            timeout = self._due_in()
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                else:
                    self._receive(key.data)
            self._send_new()
            self._retry_due()

    def _due_in(self) -> float | None:
        if self._outbox:
            return 0
        if not self._pending:
            return None
        return max(0.0, min(p.next_send for p in self._pending.values()) - time.monotonic())

    def _send_new(self) -> None:
        with self._lock:
            new, self._outbox = self._outbox, []
        for pending in new:
            while True:
                query_id = secrets.randbits(16)  # unpredictable: a guard against spoofed answers
                if query_id not in self._pending:
                    break
            pending.wire = query_id.to_bytes(2, "big") + pending.wire[2:]
            self._pending[query_id] = pending
            self._send(pending)

    def _send(self, pending: _Pending) -> None:
        host, port = pending.servers[pending.tries % len(pending.servers)]
        pending.tries += 1
        pending.next_send = min(time.monotonic() + ATTEMPT_TIMEOUT, pending.deadline)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            out = self._port(family)
            out.sock.sendto(pending.wire, (host, port))
        except OSError as exc:
            self._finish(pending, exc)
            return
        out.sent += 1
        out.outstanding.add(int.from_bytes(pending.wire[:2], "big"))
        pending.ports.append(out)

    def _port(self, family: int) -> _Port:
        """The next socket of the family's pool, in turn; a worn one is replaced first."""
        pool = self._pools[family]
        self._turn += 1
        if len(pool) < PORT_POOL:
            pool.append(self._open_port(family))
            return pool[-1]
        index = self._turn % len(pool)
        worn = pool[index]
        if worn.sent >= QUERIES_PER_PORT and self._open[family] < MAX_SOCKETS:
            worn.retired = True
            self._close_if_done(worn, family)
            pool[index] = self._open_port(family)
        return pool[index]

    def _open_port(self, family: int) -> _Port:
        port = _Port(family)
        self._selector.register(port.sock, selectors.EVENT_READ, port)
        self._open[family] += 1
        return port

    def _close_if_done(self, port: _Port, family: int | None = None) -> None:
        if port.retired and not port.outstanding:
            family = family or port.sock.family
            self._selector.unregister(port.sock)
            port.sock.close()
            self._open[family] -= 1

    def _retry_due(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self._pending.values() if p.next_send <= now]:
            if now >= pending.deadline:
                timeout = dns.resolver.LifetimeTimeout(timeout=pending.lifetime, errors=[])
                self._finish(pending, timeout)
            else:
                self._send(pending)

    def _receive(self, port: _Port) -> None:
        while True:
            try:
                wire, source = port.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable surfacing on the socket
                return
            if len(wire) < 12:
                continue
            pending = self._pending.get(int.from_bytes(wire[:2], "big"))
            if pending is None or port not in pending.ports:
                continue
            if not self._from_server(pending, source):
                continue
            if wire[12 : 12 + len(pending.question)].lower() != pending.question:
                continue
            rcode = wire[3] & 0x0F
            if rcode in TRY_NEXT_RCODES and pending.tries < len(pending.servers):
                self._send(pending)
                continue
            self._finish(pending, (wire, source))

    @staticmethod
    def _from_server(pending: _Pending, source) -> bool:
        return any(
            ipaddress.ip_address(source[0]) == ipaddress.ip_address(host) and source[1] == port
            for host, port in pending.servers
        )

    def _finish(self, pending: _Pending, outcome) -> None:
        query_id = int.from_bytes(pending.wire[:2], "big")
        self._pending.pop(query_id, None)
        for port in pending.ports:
            port.outstanding.discard(query_id)
            self._close_if_done(port)
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)


_transport: tuple[int, UdpTransport] | None = None
_transport_lock = threading.Lock()


def transport() -> UdpTransport:
    """The process's transport (made anew in a forked child, whose parent's thread is gone)."""
    global _transport
    with _transport_lock:
        if _transport is None or _transport[0] != os.getpid():
            _transport = (os.getpid(), UdpTransport())
        return _transport[1]


NXDOMAIN, NODATA = "nxdomain", "nodata"  # what most lookups find


class LookupFailed(Exception):
    """A lookup that got no usable answer: the record may or may not exist."""

    def __init__(self, name: str, rdtype: str, reason: str):
        super().__init__(f"{rdtype} {name}: {reason}")
        self.name, self.rdtype, self.reason = name, rdtype, reason

    @property
    def query(self) -> str:
        return f"{self.rdtype} {self.name}"


@dataclass
class Met:
    """A failed lookup a category met, and what it voids: "" when the category itself could
    not be tested, else the verdict it leaves untested ("FCrDNS of 192.0.2.1 not tested")."""

    failure: "LookupFailed"
    voids: str = ""


@dataclass(frozen=True)
class Answer:
    """What DNS said about one (name, type): records, or that there are none."""

    name: str
    rdtype: str
    status: str  # "ok", "nxdomain" or "nodata"
    rrset: object = None  # the dns.rrset.RRset when status is "ok"
    canonical_name: str = ""  # where CNAMEs led, without the trailing dot
    response: object = None  # the dns.message.Message, for RRSIGs and flags

    @property
    def exists(self) -> bool:
        return self.status == "ok"

    @property
    def rdatas(self) -> list:
        return list(self.rrset) if self.rrset is not None else []

    @property
    def texts(self) -> list[str]:
        """TXT records, each one's strings joined (RFC 7208 3.3), decoded leniently."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.rdatas]

    @property
    def via_cname(self) -> bool:
        return bool(self.canonical_name) and self.canonical_name != self.name


def query_wire(name: str, rdtype: str, cd: bool) -> bytes:
    """A recursive query with EDNS (and DO and CD when `cd`), id 0 (the transport sets it).
    Written directly: dnspython's message objects cost more than the rest of a lookup."""
    labels = name.encode("ascii").split(b".") if name else []
    if any(not label or len(label) > 63 or b"\\" in label for label in labels):
        qname = dns.name.from_text(name + ".").to_wire()  # escapes; raises when invalid
    else:
        qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    if len(qname) > 255:
        raise dns.name.NameTooLong
    flags = 0x0110 if cd else 0x0100  # RD, and CD
    header = struct.pack("!HHHHHH", 0, flags, 1, 0, 0, 1)
    question = qname + struct.pack("!HH", dns.rdatatype.from_text(rdtype), 1)
    opt = b"\0" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, 0x8000 if cd else 0, 0)
    return header + question + opt


def system_nameservers() -> list[tuple[str, int]]:
    """The resolvers of /etc/resolv.conf, as (address, port)."""
    found = []
    for server in dns.resolver.Resolver(configure=True).nameservers:
        if isinstance(server, str):
            found.append((server, 53))
        else:
            found.append((server.address, server.port))
    return found


def name_text(name) -> str:
    return str(name).rstrip(".").lower()


def describe_failure(exc: Exception, lifetime: float) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return f"no answer within {lifetime:g} s"
    if isinstance(exc, dns.resolver.NoNameservers):
        rcodes = set()
        for error in exc.kwargs.get("errors", []):
            message = error[-1] if isinstance(error, tuple) else error
            if isinstance(message, dns.message.Message):
                rcodes.add(dns.rcode.to_text(message.rcode()))
            else:
                rcodes.add(str(message).split(" ")[0] or "error")
        return "server answered " + "/".join(sorted(rcodes)) if rcodes else "no server answered"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _ancestors(name: str) -> list[str]:
    """The name, its parents, and the root (""): a.example.com, example.com, com, ""."""
    labels = name_text(name).split(".") if name_text(name) else []
    return [".".join(labels[i:]) for i in range(len(labels) + 1)]


class SharedLookups:
    """Lookups several sessions of one batch share: domains checked together often ask the same
    names (their provider's MX hosts, SPF includes, parent zones' keys), and each is then asked
    and parsed once for the whole batch."""

    def __init__(self):
        self.lock = threading.Lock()
        self.asked: dict[tuple[str, str, bool], Future] = {}
        self.outcomes: dict[tuple[str, str, bool], object] = {}


class DnsSession:
    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        *,
        lifetime: float = LIFETIME,
        shared: SharedLookups | None = None,
    ):
        if nameservers is None:
            nameservers = settings.MAILSEC_DNS_NAMESERVERS or system_nameservers()
        self.nameservers = list(nameservers)
        self.lifetime = lifetime
        shared = shared or SharedLookups()
        self._lock, self._asked, self._outcomes = shared.lock, shared.asked, shared.outcomes
        self._mine: set[tuple[str, str, bool]] = set()  # what this session asked (its count)
        self._watchers = threading.local()
        self.failures: dict[tuple[str, str, bool], LookupFailed] = {}

    # -- asking ------------------------------------------------------------------------------

    def prefetch(self, *queries: tuple[str, str], cd: bool = False) -> None:
        """Send lookups now; a later lookup of the same query waits for its answer."""
        self._ask(*[self._key(name, rdtype, cd) for name, rdtype in queries])

    def resolve(self, name: str, rdtype, *, cd: bool = False) -> dns.resolver.Answer:
        """dnspython's interface, answers shared: raises NXDOMAIN, NoAnswer, Timeout ...

        `cd=True` asks with checking disabled and with the DNSSEC records (DO): a validating
        resolver then hands over data it considers bogus, so the DNSSEC check can tell "bogus"
        from "server failure". Only there: signatures and denial proofs make answers several
        times larger to parse."""
        key = self._key(name, rdtype, cd)
        outcome = self._outcome(key)
        if outcome is NXDOMAIN:
            raise dns.resolver.NXDOMAIN(qnames=[key[0] + "."], responses={})
        if outcome is NODATA:
            raise dns.resolver.NoAnswer()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def lookup(self, name: str, rdtype: str, *, cd: bool = False) -> Answer:
        """Our interface: an Answer (records, NXDOMAIN or no data) or LookupFailed."""
        key = self._key(name, rdtype, cd)
        outcome = self._outcome(key)
        if outcome is NXDOMAIN or outcome is NODATA:
            return Answer(key[0], key[1], outcome)
        if isinstance(outcome, Exception):
            raise self.failures[key]
        return Answer(
            key[0],
            key[1],
            "ok",
            rrset=outcome.rrset,
            canonical_name=name_text(outcome.canonical_name),
            response=outcome.response,
        )

    def _outcome(self, key: tuple[str, str, bool]):
        """NXDOMAIN, NODATA, a dnspython Answer, or the exception of a failed lookup (noted
        each time it is met, for the category that meets it)."""
        outcome = self._outcomes.get(key)
        if outcome is None:
            (future,) = self._ask(key)
            try:
                outcome = self._interpret(key, *future.result())
            except Exception as exc:  # kept: the same lookup fails the same way every time
                outcome = exc
            self._outcomes[key] = outcome
        elif key not in self._mine:
            with self._lock:
                self._mine.add(key)
        if isinstance(outcome, Exception):
            failure = LookupFailed(key[0], key[1], describe_failure(outcome, self.lifetime))
            self._note(key, failure)
        return outcome

    @staticmethod
    def _key(name, rdtype, cd: bool) -> tuple[str, str, bool]:
        if isinstance(rdtype, str) and rdtype.isupper():
            return name_text(name), rdtype, cd
        return name_text(name), dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype)), cd

    def _ask(self, *keys: tuple[str, str, bool]) -> list[Future]:
        futures, new = [], []
        with self._lock:
            for key in keys:
                self._mine.add(key)
                future = self._asked.get(key)
                if future is None:
                    new.append(key)
                    future = self._asked[key] = Future()
                futures.append(future)
        if new:
            queries = [(query_wire(*key), self._asked[key]) for key in new]
            transport().submit_many(queries, self.nameservers, self.lifetime)
        return futures

    def _interpret(self, key, wire: bytes, server: tuple[str, int]):
        """The answer a resolver would give, parsing no more than needed: most lookups of a
        check (DKIM selectors, policy records) find nothing, and say so in the header."""
        _, rdtype, _ = key
        rcode, answers = wire[3] & 0x0F, int.from_bytes(wire[6:8], "big")
        if wire[2] & 0x02:  # truncated: ask again over TCP
            query = dns.message.from_wire(query_wire(*key))
            response = dns.query.tcp(query, server[0], timeout=self.lifetime, port=server[1])
            wire, rcode = response.to_wire(), response.rcode()
            answers = sum(len(rrset) for rrset in response.answer)
        if rcode in TRY_NEXT_RCODES:
            error = (server[0], False, server[1], dns.rcode.to_text(rcode))
            query = dns.message.from_wire(query_wire(*key))
            raise dns.resolver.NoNameservers(request=query, errors=[error])
        if rcode == dns.rcode.NXDOMAIN:
            return NXDOMAIN
        if rcode == dns.rcode.NOERROR and answers == 0:
            return NODATA
        response = dns.message.from_wire(wire)
        qname = response.question[0].name
        answer = dns.resolver.Answer(
            qname, dns.rdatatype.from_text(rdtype), dns.rdataclass.IN, response, *server
        )
        return NODATA if answer.rrset is None else answer

    # -- failures ----------------------------------------------------------------------------

    def _note(self, key: tuple[str, str, bool], failure: LookupFailed) -> None:
        with self._lock:
            self.failures.setdefault(key, failure)
        scopes = getattr(self._watchers, "optional", [])
        met = Met(failure, scopes[-1] if scopes else "")
        for watched in getattr(self._watchers, "stack", []):
            same = next((m for m in watched if m.failure.query == failure.query), None)
            if same is None:
                watched.append(met)
            elif same.voids and not met.voids:  # needed by the core after all
                watched[watched.index(same)] = met

    @contextmanager
    def watch(self) -> Iterator[list["Met"]]:
        """Collect the failed lookups met in this thread inside the block, each with what it
        voids ("" for the category itself: see `optional`)."""
        stack = self._watchers.__dict__.setdefault("stack", [])
        failures: list[Met] = []
        stack.append(failures)
        try:
            yield failures
        finally:
            stack.remove(failures)

    @contextmanager
    def optional(self, voids: str) -> Iterator[None]:
        """Lookups that only one verdict of a category needs (a PTR for FCrDNS, a report
        vendor's authorisation record, one DKIM selector of many): a failure inside the block
        voids `voids` (said as "FCrDNS of 192.0.2.1 not tested"), not the whole category, and
        ends the block, as a LookupFailed the block lets through would."""
        scopes = self._watchers.__dict__.setdefault("optional", [])
        scopes.append(voids)
        try:
            yield
        except LookupFailed:
            pass
        finally:
            scopes.pop()

    def failing_zones(self, names: list[str]) -> dict[str, str]:
        """For each name whose lookup failed, the zone at fault: the one just below the
        closest ancestor that still answers (its SOA, or that it has none). "" (the root) when
        nothing answers: then the resolver is at fault, not the domain. Every ancestor is
        asked at once, so a dead zone costs one timeout, not one per name."""
        ancestors = {name: _ancestors(name) for name in names}
        self.prefetch(*[(a, "SOA") for chain in ancestors.values() for a in chain])
        return {name: self._failing_zone(chain) for name, chain in ancestors.items()}

    def _failing_zone(self, candidates: list[str]) -> str:
        for i, candidate in enumerate(candidates):
            try:
                self.lookup(candidate, "SOA")
            except LookupFailed:
                continue
            return candidates[i - 1] if i > 0 else candidate
        return ""

    def resolver_problem(self, signed_zones: list[str] = ()) -> Message | None:
        """What makes the resolvers unfit to judge by (a Message), or None: the root zone's SOA
        and NS must be answered (a filtering or captive resolver says NXDOMAIN to everything),
        and the keys of each of `signed_zones` (the trust anchors' zones) must come with their
        RRSIG when asked with DO (a resolver that strips signatures makes every signed domain
        bogus)."""
        self.prefetch(("", "SOA"), ("", "NS"))
        self.prefetch(*[(zone, "DNSKEY") for zone in signed_zones], cd=True)
        servers = ", ".join(f"{host}:{port}" for host, port in self.nameservers)
        for rdtype in ("SOA", "NS"):
            try:
                answer = self.lookup("", rdtype)
            except LookupFailed as failed:
                return msg(
                    gettext_noop(
                        "The resolver (%(servers)s) could not resolve the root zone's "
                        "%(rdtype)s: %(reason)s."
                    ),
                    servers=servers,
                    rdtype=rdtype,
                    reason=failed.reason,
                )
            if not answer.exists:
                return msg(
                    gettext_noop(
                        "The resolver (%(servers)s) answers %(status)s for the root zone's "
                        "%(rdtype)s, which every resolver can see: it does not tell the truth "
                        "(a captive portal or a filtering resolver?)."
                    ),
                    servers=servers,
                    status=answer.status.upper(),
                    rdtype=rdtype,
                )
        for zone in signed_zones:
            try:
                answer = self.lookup(zone, "DNSKEY", cd=True)
            except LookupFailed as failed:
                return msg(
                    gettext_noop(
                        "The resolver (%(servers)s) could not resolve DNSKEY %(zone)s: %(reason)s."
                    ),
                    servers=servers,
                    zone=zone or ".",
                    reason=failed.reason,
                )
            signed = answer.response is not None and any(
                rrset.rdtype == dns.rdatatype.RRSIG for rrset in answer.response.answer
            )
            if not answer.exists:
                return msg(
                    gettext_noop(
                        "The resolver (%(servers)s) says %(zone)s, whose key is a configured "
                        "trust anchor, has no DNSKEY (%(status)s): it strips DNSSEC records (or "
                        "MAILSEC_DNSSEC_TRUST_ANCHORS names the wrong zone), so every signed "
                        "domain would look bogus."
                    ),
                    servers=servers,
                    zone=zone or ".",
                    status=answer.status.upper(),
                )
            if not signed:
                return msg(
                    gettext_noop(
                        "The resolver (%(servers)s) answers DNSKEY %(zone)s without its RRSIG "
                        "although asked with DO: it strips DNSSEC signatures, so every signed "
                        "domain would look bogus."
                    ),
                    servers=servers,
                    zone=zone or ".",
                )
        return None

    @property
    def queries(self) -> int:
        """How many distinct lookups this session made (some may have been shared)."""
        return len(self._mine)

    @property
    def checkdmarc_resolver(self) -> "CheckdmarcResolver":
        return CheckdmarcResolver(self)

    @property
    def checkdmarc_nameservers(self) -> list:
        """The session's servers in checkdmarc's terms, for the one lookup it makes without the
        resolver it is given (an SPF exp= target): it then asks these, not the system's."""
        return [dns.nameserver.Do53Nameserver(host, port) for host, port in self.nameservers]


class CheckdmarcResolver(dns.resolver.Resolver):
    """Hands checkdmarc's lookups to the session (shared, counted, bounded, forgotten with it).
    Pass it to every checkdmarc function that takes `resolver=`; one that looks names up
    without taking it (checkdmarc's SPF `exp=` probe) must not be called: it would ask the
    system's resolver."""

    def __init__(self, session: DnsSession):
        super().__init__(configure=False)
        self.session = session
        self.nameservers = [f"{host}" for host, _ in session.nameservers]
        self.lifetime = session.lifetime

    def resolve(self, qname, rdtype="A", *args, **kwargs):
        return self.session.resolve(str(qname), rdtype)


class OfflineResolver(dns.resolver.Resolver):
    """For checkdmarc's parsers, which look up what mailsec checks itself through the session
    (DMARC report destinations): every query fails at once, and nothing leaves the process."""

    def __init__(self):
        super().__init__(configure=False)
        self.nameservers = ["127.0.0.1"]  # never used: resolve() asks nobody

    def resolve(self, qname, rdtype="A", *args, **kwargs):
        raise dns.resolver.NoNameservers()


class _Forgetful(dict):
    """A cache that keeps nothing."""

    def __setitem__(self, key, value) -> None:
        pass


# checkdmarc keeps every answer for 30 minutes per process in checkdmarc.utils.DNS_CACHE, keyed
# by name and type whatever resolver it was given: a long-lived worker would judge a changed
# record from its old value. Its lookups only use that module-level default (query_dns skips a
# cache that is not an ExpiringDict), so a cache that keeps nothing turns it off for every
# caller; the session remembers answers for one run, and nothing outlives it.
checkdmarc.utils.DNS_CACHE = _Forgetful()
