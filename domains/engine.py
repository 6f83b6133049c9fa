"""Runs the checks for a domain (or many, concurrently) and scores the result."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domains.checks import (  # noqa: F401  (importing a check registers it)
    ORDER,
    bimi,
    dane,
    dkim,
    dmarc,
    dnssec,
    imap,
    mta_sts,
    mx,
    pop3,
    smtp,
    spf,
    submission,
    tls_rpt,
)
from domains.checks.base import REGISTRY, CategoryResult, Check, Context, Status
from domains.dns import DnsSession, LookupFailed, SharedLookups
from domains.findings import finding
from domains.scoring import category_score, overall

PROBE_CATEGORIES = [name for name in ORDER if REGISTRY[name].probes]
DNS_CATEGORIES = [name for name in ORDER if not REGISTRY[name].probes]

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


class ProbeSource:
    """Where a run's probe results come from: `probe(targets, session)` -> {key: ProbeResult}.

    The default probes now, through a Prober of its own (the `check_domain` command). The
    scheduler passes one with the database cache (domains/probing.py), or one that only reads
    stored results (the DNS checks between two probe runs)."""

    stored = False  # True: the results are kept ones, nothing is probed

    def __init__(self, prober=None):
        self._prober = prober

    def probe(self, targets: list, session: DnsSession | None) -> dict:
        if not targets:
            return {}
        if self._prober is None:
            from domains.probes.runner import Prober

            self._prober = Prober()
        return self._prober.probe_many(targets, session)

    def close(self) -> None:
        if self._prober is not None:
            self._prober.close()


@dataclass
class _Job:
    """One domain between the two steps of its run: DNS checks done and probe targets known,
    then (once every domain of the batch has them) the probe verdicts."""

    ctx: Context
    requested: list[str]
    checks: list[Check]
    started: datetime
    targets: list = field(default_factory=list)


def check_domain(
    domain: str,
    *,
    categories: list[str] | None = None,
    dkim_selectors: list[str] = (),
    session: DnsSession | None = None,
    access_hosts: list[str] = (),
    probes: ProbeSource | None = None,
) -> RunResult:
    """Check one domain. Protocol probe categories probe through `probes` (by default a new
    ProbeSource, closed at the end)."""
    job = _start(domain, categories, dkim_selectors, session or DnsSession(), access_hosts)
    own = probes is None
    probes = probes or ProbeSource()
    try:
        return _finish(job, probes.probe(job.targets, job.ctx.dns), probes.stored)
    finally:
        if own:
            probes.close()


def _start(domain, categories, dkim_selectors, session, access_hosts) -> _Job:
    requested, order = plan(categories)
    ctx = Context(
        domain=domain,
        dns=session,
        dkim_selectors=list(dkim_selectors),
        access_hosts=list(access_hosts),
    )
    job = _Job(ctx, requested, [REGISTRY[name]() for name in order], datetime.now(UTC))
    for check in job.checks:
        session.prefetch(*check.prefetch(ctx))
    # Every DNS category first (none needs a probe category), then the probe targets.
    for check in job.checks:
        if not check.probes:
            ctx.results[check.name] = run_one(check, ctx)
    for check in job.checks:
        if check.probes:
            job.targets += plan_one(check, ctx)
    return job


def _finish(job: _Job, probed: dict, stored: bool) -> RunResult:
    ctx = job.ctx
    ctx.probes, ctx.probe_source = probed, "stored" if stored else "live"
    for check in job.checks:
        if check.probes and check.name not in ctx.results:
            ctx.results[check.name] = run_one(check, ctx)
    for check in job.checks:
        result = ctx.results[check.name]
        if result.status != Status.ERROR and check.finish(ctx, result):
            result.status, result.score = category_score(result)
    results = {name: ctx.results[name] for name in job.requested}
    total = overall(results, dmarc_reject=ctx.data("dmarc").get("policy") == "reject")
    status = "complete" if total.complete else "partial"
    if total.score is None:
        status = "error"
    return RunResult(
        domain=ctx.domain,
        started_at=job.started,
        finished_at=datetime.now(UTC),
        categories=results,
        score=total.score,
        grade=total.grade,
        status=status,
        queries=ctx.dns.queries,
        requested=job.requested,
    )


def plan_one(check, ctx: Context) -> list:
    """A probe category's targets; a failed lookup makes it "could not test" at once."""
    with ctx.dns.watch() as failures:
        try:
            targets = check.targets(ctx)
        except LookupFailed:
            targets = []
    if failures:
        ctx.results[check.name] = _lookup_failed(check, ctx, failures)
        return []
    return targets


def _lookup_failed(check, ctx: Context, failures, result=None) -> CategoryResult:
    """ "Could not test": the findings name the failed lookups; what the check found before
    (its data) stays available to the checks that need it."""
    result = result or CategoryResult(check.name)
    result.status, result.score = Status.ERROR, None
    if check.probes and result.servers is None:
        result.servers = []  # a probe category always lists its servers (none known here)
    result.findings = [
        finding(
            "dns.lookup_failed", f"{f.query}: {f.reason}.", domain=ctx.domain, category=check.name
        )
        for f in failures
    ]
    return result


def run_one(check, ctx: Context) -> CategoryResult:
    """One category; a failed lookup makes it "could not test", never "missing"."""
    with ctx.dns.watch() as failures:
        try:
            result = check.run(ctx)
        except LookupFailed:
            result = CategoryResult(check.name)
    if failures:
        return _lookup_failed(check, ctx, failures, result)
    result.status, result.score = category_score(result)
    return result


def check_domains(
    domains: list[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    processes: int = 1,
    categories: list[str] | None = None,
    nameservers: list[tuple[str, int]] | None = None,
    selectors: dict[str, list[str]] | None = None,
    access_hosts: dict[str, list[str]] | None = None,
    probes: ProbeSource | None = None,
) -> list[RunResult]:
    """Check several domains at once (bounded); results in input order.

    Within a process, `concurrency` domains are checked side by side and share their lookups
    (a name several domains ask about is asked once). On a fast network parsing answers keeps a
    core busy, so `processes` > 1 spreads the batch over that many worker processes too, unless
    protocol probes are asked for: every domain of the batch must then share one Prober (one
    probe per address and port for the whole run), so the batch stays in one process."""
    options = {
        "categories": categories,
        "nameservers": nameservers,
        "selectors": selectors or {},
        "access_hosts": access_hosts or {},
    }
    probing = any(name in PROBE_CATEGORIES for name in plan(categories)[1])
    if processes > 1 and len(domains) > 1 and not probing:
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
    return _check_batch(domains, concurrency, options, probes)


def _check_batch(
    domains: list[str], concurrency: int, options: dict, probes: ProbeSource | None = None
) -> list[RunResult]:
    """Two steps over the whole batch: every domain's DNS checks and probe targets, then all
    the targets probed at once (a run takes as long as its slowest host, not the sum), then
    every domain's probe verdicts."""
    if not domains:
        return []
    shared = SharedLookups()
    selectors, hosts = options["selectors"], options["access_hosts"]

    def start(name: str) -> _Job:
        session = DnsSession(options["nameservers"], shared=shared)
        return _start(
            name, options["categories"], selectors.get(name, []), session, hosts.get(name, [])
        )

    own = probes is None
    probes = probes or ProbeSource()
    try:
        with ThreadPoolExecutor(max(1, min(concurrency, len(domains)))) as pool:
            jobs = list(pool.map(start, domains))
            targets = list({t.key: t for job in jobs for t in job.targets}.values())
            # The PTR lookups of shared SMTP probes go through one session of the batch.
            session = jobs[0].ctx.dns
            probed = probes.probe(targets, session)
            return list(pool.map(lambda job: _finish(job, probed, probes.stored), jobs))
    finally:
        if own:
            probes.close()
