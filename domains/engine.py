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

Protocol probe categories (smtp, submission, imap, pop3) run in two steps: every domain of a
batch first runs its DNS categories and names its probe targets, then all the targets are
probed at once (one probe per address and port, see domains/probes/runner.py), then every
domain's probe verdicts are judged. A batch takes as long as its slowest host, not the sum.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils.translation import gettext_noop, ngettext

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
from domains.dns import DnsSession, LookupFailed, Met, SharedLookups
from domains.findings import finding
from domains.messages import Message, msg
from domains.probes.wording import void_worded
from domains.scoring import calibrate, category_score, overall

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
        what = ngettext("unknown check", "unknown checks", len(unknown))
        raise ValueError(f"{what}: {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
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
    met: dict[str, list[Met]] = field(default_factory=dict)  # failed lookups, by category
    not_tested: "RunResult | None" = None  # the resolver could not be believed: judged nothing


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
    problem = session.resolver_problem(signed_zones(order))
    if problem:
        job.not_tested = _not_tested(domain, requested, problem, job.started, session)
        return job
    for check in job.checks:
        session.prefetch(*check.prefetch(ctx))
    # Every DNS category first (none needs a probe category), then the probe targets.
    for check in job.checks:
        if not check.probes:
            ctx.results[check.name], job.met[check.name] = run_one(check, ctx)
    for check in job.checks:
        if check.probes:
            job.targets += plan_one(check, ctx, job)
    return job


def _finish(job: _Job, probed: dict, stored: bool) -> RunResult:
    if job.not_tested is not None:
        return job.not_tested
    ctx = job.ctx
    ctx.probes, ctx.probe_source = probed, "stored" if stored else "live"
    for check in job.checks:
        if check.probes and check.name not in ctx.results:
            ctx.results[check.name], met = run_one(check, ctx)
            job.met[check.name] = job.met.get(check.name, []) + met
    for check in job.checks:
        result = ctx.results[check.name]
        if result.status != Status.ERROR and check.finish(ctx, result):
            result.status, result.score = category_score(result)
    results = {name: ctx.results[name] for name in job.requested}
    # Severities that depend on other categories (docs/scoring.md), from every category run.
    calibrate(ctx.results, ctx.domain)
    _report_failures(ctx, {name: job.met.get(name, []) for name in job.requested}, results)
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


def plan_one(check, ctx: Context, job: _Job) -> list:
    """A probe category's targets; a failed core lookup makes it "could not test" at once."""
    with ctx.dns.watch() as met:
        try:
            targets = check.targets(ctx)
        except LookupFailed:
            targets = []
    job.met[check.name] = list(met)
    if any(not m.voids for m in met):
        result = CategoryResult(check.name, status=Status.ERROR, score=None)
        result.servers = []  # a probe category always lists its servers (none known here)
        ctx.results[check.name] = result
        return []
    return targets


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
        if check.probes and result.servers is None:
            result.servers = []
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


def _failure_detail(zone: str, entries: list[tuple[str, Met]]) -> Message:
    """The evidence, to translate (findings.msg); the lookups and what each voids are data."""
    lookups = list(dict.fromkeys(f"{m.failure.query} ({m.failure.reason})" for _, m in entries))
    shown = "; ".join(lookups[:5])
    if len(lookups) > 5:
        shown = msg(
            gettext_noop("%(lookups)s; and %(count)s more"), lookups=shown, count=len(lookups) - 5
        )
    if not zone:
        text = gettext_noop("No usable answer from the resolver: %(lookups)s.")
    elif "." not in zone:  # a top-level domain fails far less often than a resolver
        text = gettext_noop(
            "No usable answer from the resolver (or the name servers of %(zone)s): %(lookups)s."
        )
    else:
        text = gettext_noop("No usable answer from the name servers of %(zone)s: %(lookups)s.")
    detail = msg(text, zone=zone, lookups=shown)
    voided = list(dict.fromkeys(c for c, m in entries if not m.voids))
    if voided:
        voided_text = msg(gettext_noop("Could not test: %(categories)s."), categories=voided)
        detail = msg(gettext_noop("%(first)s %(second)s"), first=detail, second=voided_text)
    untested = list(dict.fromkeys(m.voids for _, m in entries if m.voids))
    if untested:  # each says itself what it leaves untested
        shown = [void_worded(void) for void in untested[:5]]
        if not any(isinstance(void, Message) for void in shown):
            # None recognised: as stored (msg() would join a list of plain text with commas).
            shown = "; ".join(untested[:5])
        if len(untested) > 5:
            shown = msg(
                gettext_noop("%(lookups)s; and %(count)s more"),
                lookups=shown,
                count=len(untested) - 5,
            )
        detail = msg(gettext_noop("%(first)s %(second)s."), first=detail, second=shown)
    return detail


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
