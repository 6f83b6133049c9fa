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
    mta_sts,
    mx,
    spf,
    tls_rpt,
)
from domains.checks.base import REGISTRY, CategoryResult, Context, Status
from domains.dns import DnsSession, LookupFailed, SharedLookups
from domains.findings import finding
from domains.scoring import category_score, overall

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
    instances = [REGISTRY[name]() for name in order]
    for check in instances:
        session.prefetch(*check.prefetch(ctx))
    for check in instances:
        ctx.results[check.name] = run_one(check, ctx)
    results = {name: ctx.results[name] for name in requested}
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


def run_one(check, ctx: Context) -> CategoryResult:
    """One category; a failed lookup makes it "could not test", never "missing"."""
    with ctx.dns.watch() as failures:
        try:
            result = check.run(ctx)
        except LookupFailed:
            result = CategoryResult(check.name)
    if failures:
        result.status, result.score = Status.ERROR, None
        result.findings = [
            finding(
                "dns.lookup_failed",
                f"{f.query}: {f.reason}.",
                domain=ctx.domain,
                category=check.name,
            )
            for f in failures
        ]
        return result
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
