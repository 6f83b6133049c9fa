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

    def as_dict(self) -> dict:
        return {**asdict(self), "severity": str(self.severity)}


@dataclass
class CategoryResult:
    name: str
    status: Status = Status.PASS
    score: int | None = 100  # None when not scored (error, or not applicable)
    findings: list[Finding] = field(default_factory=list)
    records: dict = field(default_factory=dict)  # the raw DNS records seen, for history and diffs
    data: dict = field(default_factory=dict)  # parsed facts other checks use
    applicable: bool = True

    def as_dict(self) -> dict:
        return {
            "status": str(self.status),
            "score": self.score,
            "applicable": self.applicable,
            "records": self.records,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass
class Context:
    """One domain's run: the name, the DNS session, extra selectors, and earlier results."""

    domain: str
    dns: DnsSession
    dkim_selectors: list[str] = field(default_factory=list)
    results: dict[str, CategoryResult] = field(default_factory=dict)

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
    """A category: `run()` reads DNS through the context and returns a CategoryResult."""

    name: str = ""
    requires: tuple[str, ...] = ()  # categories whose data this one reads

    def prefetch(self, ctx: Context) -> list[tuple[str, str]]:
        """Lookups to start early, in parallel with everything else."""
        return []

    def run(self, ctx: Context) -> CategoryResult:
        raise NotImplementedError


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    REGISTRY[cls.name] = cls
    return cls
