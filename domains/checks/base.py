"""What every check shares: findings, category results, the run context and the registry."""

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from domains.dns import DnsSession


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical ... 4 for info: sorts the worst first."""
        return list(Severity).index(self)


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"  # could not test: a lookup failed
    INFO = "info"  # not judged (e.g. not applicable to this domain)


@dataclass
class Finding:
    id: str
    category: str
    severity: Severity
    title: str
    detail: str
    remediation: str
    # The evidence's template and arguments, to translate it (findings.localized); not in
    # as_dict(): the JSON outputs stay the English texts.
    message: dict | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        found = asdict(self)
        del found["message"]
        return {**found, "severity": str(self.severity)}


@dataclass
class CategoryResult:
    name: str
    status: Status = Status.PASS
    score: int | None = 100  # None when not scored (error, or not applicable)
    findings: list[Finding] = field(default_factory=list)
    records: dict = field(default_factory=dict)  # the raw DNS records seen, for history and diffs
    data: dict = field(default_factory=dict)  # parsed facts other checks use
    applicable: bool = True
    # Protocol probe categories only: one summary per (host, address, port) probed, as the
    # pages and the JSON output show them (see checks/mailservers.py).
    servers: list[dict] | None = None

    def as_dict(self) -> dict:
        found = {
            "status": str(self.status),
            "score": self.score,
            "applicable": self.applicable,
            "records": self.records,
            "findings": [f.as_dict() for f in self.findings],
        }
        if self.servers is not None:
            found["servers"] = self.servers
        return found


@dataclass
class Context:
    """One domain's run: the name, the DNS session, extra selectors, and earlier results."""

    domain: str
    dns: DnsSession
    dkim_selectors: list[str] = field(default_factory=list)
    results: dict[str, CategoryResult] = field(default_factory=dict)
    # The team's "mail access hosts" ("host" or "host:port"), where SRV records say nothing.
    access_hosts: list[str] = field(default_factory=list)
    # Protocol probes: what each target found (by Target.key), filled in by the engine between
    # the categories' targets() and run(); None for a target not probed (yet).
    probes: dict = field(default_factory=dict)
    probe_source: str = "live"  # "live" (probed now or recently) or "stored" (kept results)
    plans: dict = field(default_factory=dict)  # category -> what its targets() found

    def data(self, category: str) -> dict:
        result = self.results.get(category)
        return result.data if result else {}

    @property
    def mx_hosts(self) -> list[str]:
        return self.data("mx").get("hosts", [])

    @property
    def null_mx(self) -> bool:
        return bool(self.data("mx").get("null"))

    @property
    def sends_no_mail(self) -> bool:
        """An SPF record of only `-all` with a DMARC reject policy, or an RFC 7505 null MX
        while SPF authorises no sender: a null MX says the domain receives no mail, not that it
        sends none."""
        spf = self.data("spf")
        spf_only_fail = spf.get("only_fail_all", False)
        dmarc_reject = self.data("dmarc").get("policy") == "reject"
        # A record with anything beside `-all` (a mechanism, a redirect) lets some host send.
        spf_authorises = bool(spf) and not spf_only_fail
        return (self.null_mx and not spf_authorises) or (spf_only_fail and dmarc_reject)


class Check:
    """A category: `run()` reads DNS through the context and returns a CategoryResult.

    A protocol probe category (`probes = True`) runs in two steps: `targets()` finds what to
    probe (DNS only), the engine has every target of the run probed at once, then `run()` judges
    the results in `ctx.probes`. After every category has run, `finish()` may add findings that
    need other categories' results (DANE and MTA-STS against the certificates served)."""

    name: str = ""
    requires: tuple[str, ...] = ()  # categories whose data this one reads
    probes: bool = False

    def targets(self, ctx: Context) -> list:
        """Protocol probe categories: the Targets to probe."""
        return []

    def finish(self, ctx: Context, result: CategoryResult) -> bool:
        """Add findings from the other categories' results; True when it added any."""
        return False

    def prefetch(self, ctx: Context) -> list[tuple[str, str]]:
        """Lookups to start early, in parallel with everything else."""
        return []

    def run(self, ctx: Context) -> CategoryResult:
        raise NotImplementedError


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    REGISTRY[cls.name] = cls
    return cls
