"""Runs the checks for a domain (or many, concurrently) and scores the result.

Before judging, a run asks whether its resolver can be believed (`DnsSession.resolver_problem`):
when it cannot, every category is "could not test" and the run has one `dns.resolver_broken`
finding, instead of grading every domain F for the resolver's lies.

Failed lookups void only what needs their answer. A lookup that fails outside any `optional`
scope is the category's core: the category becomes "could not test". One that fails inside
`with ctx.dns.optional("FCrDNS of 192.0.2.1 not tested"):` ends that block (a LookupFailed
raised there is swallowed) and leaves the category its status from what was answered; the run
then says what went untested. Checks wrap every lookup that only some verdict needs in such a
scope (a PTR, a report vendor's authorisation record, one DKIM selector among many, the SPF
type-99 record). Failures are reported once per failing zone (`DnsSession.failing_zones`), not
once per lookup and category.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from domains.checks import (  # noqa: F401  (importing a check registers it)
    ORDER,
    bimi,
    dane,
    dkim,
    dmarc,
    dnssec,
    mta_sts,
    mx,
    spf,
    tls_rpt,
)
from domains.checks.base import REGISTRY, CategoryResult, Context, Status
from domains.dns import DnsSession, LookupFailed, Met, SharedLookups
from domains.findings import finding
from domains.scoring import calibrate, category_score, overall

DEFAULT_CONCURRENCY = 16


@dataclass
class RunResult:
    domain: str
    started_at: datetime
    finished_at: datetime
    categories: dict[str, CategoryResult]
    score: int | None
    grade: str
    status: str  # "complete", "partial" (some category could not be tested) or "error"
    queries: int = 0
    requested: list[str] = field(default_factory=list)

    @property
    def findings(self):
        found = [f for name in self.requested for f in self.categories[name].findings]
        return sorted(found, key=lambda f: (f.severity.rank, f.category, f.id))

    @property
    def records(self) -> dict:
        return {name: self.categories[name].records for name in self.requested}


def plan(requested: list[str] | None) -> tuple[list[str], list[str]]:
    """(the categories to report, every category to run, dependencies first)."""
    names = list(ORDER) if not requested else list(requested)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    order: list[str] = []

    def visit(name: str) -> None:
        for dependency in REGISTRY[name].requires:
            visit(dependency)
        if name not in order:
            order.append(name)

    for name in names:
        visit(name)
    return [n for n in order if n in names], order


def check_domain(
    domain: str,
    *,
    categories: list[str] | None = None,
    dkim_selectors: list[str] = (),
    session: DnsSession | None = None,
) -> RunResult:
    requested, order = plan(categories)
    session = session or DnsSession()
    ctx = Context(domain=domain, dns=session, dkim_selectors=list(dkim_selectors))
    started = datetime.now(UTC)
    problem = session.resolver_problem(signed_zones(order))
    if problem:
        return _not_tested(domain, requested, problem, started, session)
    instances = [REGISTRY[name]() for name in order]
    for check in instances:
        session.prefetch(*check.prefetch(ctx))
    met: dict[str, list[Met]] = {}
    for check in instances:
        ctx.results[check.name], met[check.name] = run_one(check, ctx)
    results = {name: ctx.results[name] for name in requested}
    # Severities that depend on other categories (docs/scoring.md), from every category run.
    calibrate(ctx.results, domain)
    _report_failures(ctx, {name: met[name] for name in requested}, results)
    total = overall(results, dmarc_reject=ctx.data("dmarc").get("policy") == "reject")
    status = "complete" if total.complete else "partial"
    if total.score is None:
        status = "error"
    return RunResult(
        domain=domain,
        started_at=started,
        finished_at=datetime.now(UTC),
        categories=results,
        score=total.score,
        grade=total.grade,
        status=status,
        queries=session.queries,
        requested=requested,
    )


def signed_zones(order: list[str]) -> list[str]:
    """The zones whose signatures the resolver must hand over: those of the trust anchors, when
    the run judges DNSSEC (a resolver that strips them falsifies only those verdicts)."""
    if not {"dnssec", "dane"} & set(order):
        return []
    owners = [
        anchor.split()[0].rstrip(".").lower() for anchor in settings.MAILSEC_DNSSEC_TRUST_ANCHORS
    ]
    return list(dict.fromkeys(owners))


def _not_tested(domain, requested, problem, started, session) -> RunResult:
    """A run whose resolver cannot be believed: nothing judged, one finding that says why."""
    results = {name: CategoryResult(name, status=Status.ERROR, score=None) for name in requested}
    first = requested[0]
    results[first].findings.append(
        finding("dns.resolver_broken", problem, domain=domain, category=first)
    )
    return RunResult(
        domain=domain,
        started_at=started,
        finished_at=datetime.now(UTC),
        categories=results,
        score=None,
        grade="",
        status="error",
        queries=session.queries,
        requested=requested,
    )


def run_one(check, ctx: Context) -> tuple[CategoryResult, list[Met]]:
    """One category, and the failed lookups it met. A failed core lookup makes it "could not
    test", never "missing"; failed optional ones leave it the status of what was answered."""
    with ctx.dns.watch() as met:
        try:
            result = check.run(ctx)
        except LookupFailed:
            result = CategoryResult(check.name)
    if any(not m.voids for m in met):
        result.status, result.score = Status.ERROR, None
        result.findings = []  # judged from half the answers: says nothing
    else:
        result.status, result.score = category_score(result)
    return result, list(met)


def _report_failures(ctx: Context, met: dict[str, list[Met]], results) -> None:
    """One finding per failing zone, in the first category it made "could not test" (or, when
    it voided only some verdicts, the first one it touched), naming every lookup it failed and
    what that left untested."""
    failing = ctx.dns.failing_zones([m.failure.name for ms in met.values() for m in ms])
    zones: dict[str, list[tuple[str, Met]]] = {}
    for category, entries in met.items():
        for m in entries:
            zones.setdefault(failing[m.failure.name], []).append((category, m))
    for zone, entries in zones.items():
        core = [c for c, m in entries if not m.voids]
        home = (core or [entries[0][0]])[0]
        kind = "dns.lookup_failed" if core else "dns.partial_lookup_failed"
        results[home].findings.append(
            finding(kind, _failure_detail(zone, entries), domain=ctx.domain, category=home)
        )


def _failure_detail(zone: str, entries: list[tuple[str, Met]]) -> str:
    lookups = list(dict.fromkeys(f"{m.failure.query} ({m.failure.reason})" for _, m in entries))
    shown = "; ".join(lookups[:5]) + (f"; and {len(lookups) - 5} more" if len(lookups) > 5 else "")
    if not zone:
        where = "the resolver"
    elif "." not in zone:  # a top-level domain fails far less often than a resolver
        where = f"the resolver (or the name servers of {zone})"
    else:
        where = f"the name servers of {zone}"
    untested = list(dict.fromkeys(m.voids for _, m in entries if m.voids))
    if len(untested) > 5:
        untested = [*untested[:5], f"and {len(untested) - 5} more"]
    voided = list(dict.fromkeys(c for c, m in entries if not m.voids))
    detail = f"No usable answer from {where}: {shown}."
    if voided:
        detail += f" Could not test: {', '.join(voided)}."
    if untested:  # each says itself what it leaves untested
        detail += f" {'; '.join(untested)}."
    return detail


def check_domains(
    domains: list[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    processes: int = 1,
    categories: list[str] | None = None,
    nameservers: list[tuple[str, int]] | None = None,
    selectors: dict[str, list[str]] | None = None,
) -> list[RunResult]:
    """Check several domains at once (bounded); results in input order.

    Within a process, `concurrency` domains are checked side by side and share their lookups
    (a name several domains ask about is asked once). On a fast network parsing answers keeps a
    core busy, so `processes` > 1 spreads the batch over that many worker processes too."""
    options = {"categories": categories, "nameservers": nameservers, "selectors": selectors or {}}
    if processes > 1 and len(domains) > 1:
        chunks = [domains[i::processes] for i in range(processes)]
        context = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has the checks imported: they start in milliseconds
        # (the server itself starts once per process, on first use).
        context.set_forkserver_preload(["domains.engine"])
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            parts = list(
                pool.map(_check_batch, chunks, [concurrency] * processes, [options] * processes)
            )
        by_name = {r.domain: r for part in parts for r in part}
        return [by_name[name] for name in domains]
    return _check_batch(domains, concurrency, options)


def _check_batch(domains: list[str], concurrency: int, options: dict) -> list[RunResult]:
    shared = SharedLookups()
    selectors = options["selectors"]

    def one(name: str) -> RunResult:
        return check_domain(
            name,
            categories=options["categories"],
            dkim_selectors=selectors.get(name, []),
            session=DnsSession(options["nameservers"], shared=shared),
        )

    if not domains:
        return []
    with ThreadPoolExecutor(max(1, min(concurrency, len(domains)))) as pool:
        return list(pool.map(one, domains))
