"""The one place that talks DNS.

A `DnsSession` is one check run's view of DNS: every (name, type) is asked once and its outcome
(an answer, NXDOMAIN, no data, or a failure) remembered, so the checks can share lookups and be
run again without new traffic. Lookups may be started ahead (`prefetch`) on a shared thread pool,
which is what makes a check fast over a slow network. checkdmarc gets the same session through
`session.checkdmarc_resolver`, so its queries are counted, shared and bounded like ours.

A failure (timeout, SERVFAIL, REFUSED, network error) is never turned into "no such record":
`lookup()` raises `LookupFailed`, and every failure is noted for the category that met it.
"""

import copy
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
from django.conf import settings

ATTEMPT_TIMEOUT = 1.0  # one UDP try; dnspython retries within the lifetime
LIFETIME = 3.0  # the most one lookup may take, all tries included
PREFETCH_THREADS = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="dns")
        return _pool


class LookupFailed(Exception):
    """A lookup that got no usable answer: the record may or may not exist."""

    def __init__(self, name: str, rdtype: str, reason: str):
        super().__init__(f"{rdtype} {name}: {reason}")
        self.name, self.rdtype, self.reason = name, rdtype, reason

    @property
    def query(self) -> str:
        return f"{self.rdtype} {self.name}"


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


class DnsSession:
    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        *,
        lifetime: float = LIFETIME,
    ):
        if nameservers is None:
            nameservers = settings.MAILSEC_DNS_NAMESERVERS
        self.resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self.resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
            ]
        self.resolver.cache = None
        self.resolver.timeout = min(ATTEMPT_TIMEOUT, lifetime)
        self.resolver.lifetime = lifetime
        # Ask for DNSSEC records too (RRSIGs come with the answers), for the DNSSEC check.
        self.resolver.use_edns(0, dns.flags.DO, 1232)
        # The same with checking disabled (CD): a validating resolver then hands over data it
        # considers bogus, so the DNSSEC check can tell "bogus" from "server failure".
        self.unchecked_resolver = copy.copy(self.resolver)
        self.unchecked_resolver.flags = dns.flags.RD | dns.flags.CD
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str, bool], Future] = {}
        self._watchers = threading.local()
        self.failures: dict[tuple[str, str, bool], LookupFailed] = {}

    # -- asking ------------------------------------------------------------------------------

    def resolve(self, name: str, rdtype: str, *, cd: bool = False) -> dns.resolver.Answer:
        """dnspython's interface, answers shared: raises NXDOMAIN, NoAnswer, Timeout ...

        `cd=True` asks with checking disabled (see `unchecked_resolver`)."""
        key = (name_text(name), dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype)), cd)
        with self._lock:
            future = self._results.get(key)
            owner = future is None
            if owner:
                future = self._results[key] = Future()
        if owner:
            self._run(key, future)
        try:
            return future.result()
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise
        except Exception as exc:
            failure = LookupFailed(key[0], key[1], describe_failure(exc, self.lifetime))
            self._note(key, failure)
            raise

    def lookup(self, name: str, rdtype: str, *, cd: bool = False) -> Answer:
        """Our interface: an Answer (records, NXDOMAIN or no data) or LookupFailed."""
        name = name_text(name)
        rdtype = rdtype.upper()
        try:
            answer = self.resolve(name, rdtype, cd=cd)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, "nxdomain")
        except dns.resolver.NoAnswer as exc:
            return Answer(name, rdtype, "nodata", response=exc.kwargs.get("response"))
        except Exception:
            raise self.failures[(name, rdtype, cd)] from None
        return Answer(
            name,
            rdtype,
            "ok",
            rrset=answer.rrset,
            canonical_name=name_text(answer.canonical_name),
            response=answer.response,
        )

    def prefetch(self, *queries: tuple[str, str]) -> None:
        """Start lookups in the background; a later lookup of the same query waits for it."""
        pool = _shared_pool()
        for name, rdtype in queries:
            key = (name_text(name), rdtype.upper(), False)
            with self._lock:
                if key in self._results:
                    continue
                future = self._results[key] = Future()
            pool.submit(self._run, key, future)

    def _run(self, key: tuple[str, str, bool], future: Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        resolver = self.unchecked_resolver if key[2] else self.resolver
        try:
            future.set_result(resolver.resolve(key[0] + ".", key[1], search=False))
        except Exception as exc:  # kept, and raised where the answer is asked for
            future.set_exception(exc)

    # -- failures ----------------------------------------------------------------------------

    def _note(self, key: tuple[str, str, bool], failure: LookupFailed) -> None:
        with self._lock:
            self.failures.setdefault(key, failure)
        for watched in getattr(self._watchers, "stack", []):
            if all(f.query != failure.query for f in watched):
                watched.append(failure)

    @contextmanager
    def watch(self) -> Iterator[list[LookupFailed]]:
        """Collect the failed lookups met in this thread inside the block."""
        stack = self._watchers.__dict__.setdefault("stack", [])
        failures: list[LookupFailed] = []
        stack.append(failures)
        try:
            yield failures
        finally:
            stack.remove(failures)

    @property
    def queries(self) -> int:
        return len(self._results)

    @property
    def checkdmarc_resolver(self) -> "CheckdmarcResolver":
        return CheckdmarcResolver(self)


class CheckdmarcResolver(dns.resolver.Resolver):
    """Hands checkdmarc's lookups to the session (shared, counted, bounded)."""

    def __init__(self, session: DnsSession):
        super().__init__(configure=False)
        self.session = session
        self.nameservers = session.resolver.nameservers
        self.lifetime = session.lifetime

    def resolve(self, qname, rdtype="A", *args, **kwargs):
        return self.session.resolve(str(qname), rdtype)
