"""The harness's runs: a cluster up, then passes of "every domain due at once".

A pass makes every monitored domain due (one UPDATE), sends the dispatcher's task as beat's
tick would, and watches the database until every domain has a new scheduled run and the
queues are empty. A pass with faults injects them one after the other while it runs, with
report ingestion, a reader of the pages and a second beat; when the queues have drained it
lets the clock move on (faults.reap_late, then faults.redeliver) and waits for the queues
again, then counts: every domain exactly one run, nothing stuck, no alert twice, every
report once.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.scale import faults, observe, world
from bench.scale.cluster import Cluster
from bench.scale.load import PageLoad
from bench.scale.mailboxes import fill

DISPATCH = "domains.tasks.dispatch_due_checks"
POLL = "reports.tasks.poll_mailboxes"
PASSWORD = "scale harness 42"


@dataclass
class Options:
    domains: int = 10_000
    check_workers: int = 2
    concurrency: int = 2  # pool processes per check worker
    mailboxes: int = 50
    reports: int = 100  # per mailbox
    records: int = 5  # per report
    ingest_workers: int = 2
    slow_delay: float = 1.0
    dns_pause: float = 30.0
    fault_every: float = 10.0  # seconds between two faults
    timeout: float = 3600.0
    web: bool = True
    nice: int = 10  # the background pieces' niceness (cluster.Cluster.nice); 0: all equal


@dataclass
class PassResult:
    workers: int
    domains: int
    seconds: float
    tally: observe.Tally
    checks_per_second: float
    events: list = field(default_factory=list)
    stuck: dict = field(default_factory=dict)
    queues: dict = field(default_factory=dict)


class Harness:
    def __init__(self, workdir: Path, options: Options, log=print):
        self.options, self.log = options, log
        self.world = world.build(options.domains)
        self.cluster = Cluster(
            workdir, self.world, slow_delay=options.slow_delay, nice=options.nice
        )
        self.sink = observe.WebhookSink()
        self.dovecot = None
        self.ids: dict = {}
        self.samples: list[tuple[float, int]] = []  # (monotonic time, domains checked)

    # --- up and down -------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        o = self.options
        self.cluster.start(web=o.web)
        extra = {}
        boxes = []
        if o.mailboxes:
            names = [n for n in self.world.domains if world.kind_of(int(n[1:7])) == "good"]
            self.dovecot, boxes = fill(
                self.cluster.workdir / "dovecot", o.mailboxes, o.reports, o.records, names
            )
            extra["MAILSEC_TLS_CA_FILE"] = str(self.dovecot.ca_file)
        self.cluster.env.update(extra)
        probe = [
            next(
                n
                for i, n in enumerate(self.world.domains)
                if world.kind_of(i) == "good" and i % world.PROVIDERS == p
            )
            for p in range(world.PROVIDERS)
        ]
        self.ids = self.cluster.seed(
            {
                "domains": self.world.domains,
                "alerting": self.world.alerting,
                "webhook": self.sink.url,
                "probe": probe,
                "mailboxes": boxes,
                "password": PASSWORD,
            }
        )
        c = self.cluster
        c.start_worker("dispatch", ["dispatch", "default"], 1)
        c.start_worker("probes", ["probes"], 1)
        c.start_worker("alerts", ["alerts"], 1)
        for i in range(o.ingest_workers if o.mailboxes else 0):
            c.start_worker(f"ingest{i + 1}", ["ingest"], 1)
        self.set_check_workers(o.check_workers)
        c.start_beat()
        if o.web:
            c.start_web()
        self.log(
            f"cluster up in {time.monotonic() - started:.0f} s: {o.domains} domains, "
            f"database {c.database}, Redis :{c.redis_port}, knot :{c.knot.port}, "
            f"forwarder :{c.forwarder_port}, web :{c.web_port}"
        )

    def set_check_workers(self, count: int) -> None:
        c = self.cluster
        for name in [n for n in c.workers if n.startswith("checks")]:
            c.stop_worker(name)
            del c.workers[name]
        for i in range(count):
            c.start_worker(f"checks{i + 1}", ["checks"], self.options.concurrency)
        c.wait_ready()

    def stop(self) -> None:
        self.sink.stop()
        if self.dovecot is not None:
            self.dovecot.stop()
        self.cluster.stop()

    # --- passes ------------------------------------------------------------------------

    def make_all_due(self) -> datetime:
        now = datetime.now(UTC)
        self.cluster.sql.execute(
            "UPDATE domains_domain SET next_check_at = %s WHERE organization_id = %s",
            (now, self.ids["organization"]),
        )
        self.cluster.send(DISPATCH)
        return now

    def settled_depths(self, patience: float = 30) -> dict[str, int]:
        """The queues at the end: a task running holds its message unacknowledged (late
        acknowledgement), and beat keeps sending its periodic ones, so a message seen
        unacknowledged once may be one at work: up to `patience` seconds for every count to
        be zero at once; what stays is left behind."""
        depths = {}

        def empty():
            depths.update(observe.queue_depths(self.cluster.redis(), self.cluster.prefix))
            return not any(depths.values())

        observe.wait_until(empty, patience, every=0.2)
        return depths

    def drained(self) -> bool:
        depths = observe.queue_depths(self.cluster.redis(), self.cluster.prefix)
        return not any(v for k, v in depths.items() if k != "unacked")

    def wait_for_pass(self, since: datetime, started: float, on_tick=None, settle=None) -> float:
        """Until every domain has a run since `since`, or `settle()` says nothing more will
        come by itself (or the timeout); the seconds taken."""
        organization, domains = self.ids["organization"], self.options.domains

        def done():
            checked = observe.checked_count(self.cluster.sql, organization, since)
            self.samples.append((time.monotonic(), checked))
            return checked >= domains or (settle is not None and settle())

        def tick():
            self.cluster.supervise()
            if on_tick:
                on_tick()

        remaining = self.options.timeout - (time.monotonic() - started)
        observe.wait_until(done, remaining, every=0.5, on_tick=tick)
        return time.monotonic() - started

    def idle_for(self, seconds: float) -> bool:
        """The queues are empty and no domain was checked for `seconds`: what is left was
        lost, and comes back only when the clock moves on."""
        if not self.drained():
            return False
        recent = [n for t, n in self.samples if t >= time.monotonic() - seconds]
        return (
            len(recent) > 2
            and recent[0] == recent[-1]
            and (self.samples[0][0] < time.monotonic() - seconds)
        )

    def wait_drained(self, timeout: float = 300) -> bool:
        def quiet():
            self.cluster.supervise()
            stuck = observe.stuck(self.cluster.sql, self.ids["organization"])
            return (
                self.drained()
                and not stuck["alerts_pending"]
                and not (stuck["mailbox_passes_running"])
            )

        # Quiet twice, a few seconds apart: a worker may be between two tasks.
        return observe.wait_until(quiet, timeout) and (
            time.sleep(3) or observe.wait_until(quiet, timeout)
        )

    def throughput_pass(self, workers: int) -> PassResult:
        self.set_check_workers(workers)
        started = time.monotonic()
        since = self.make_all_due()
        seconds = self.wait_for_pass(since, started)
        self.wait_drained()
        tally = observe.tally(self.cluster.sql, self.ids["organization"], since)
        result = PassResult(
            workers, self.options.domains, seconds, tally, self.options.domains / seconds
        )
        checkers = [w for n, w in self.cluster.workers.items() if n.startswith("checks")]
        pids = [p for w in checkers for p in [w.process.pid, *w.pool_children()]]
        # Started for this pass: their whole CPU time is this pass's (and their start's).
        result.cpu_ms_per_check = round(observe.cpu_seconds(pids) * 1000 / self.options.domains, 1)
        self.log(
            f"{workers} check worker(s): {self.options.domains} domains in {seconds:.1f} s, "
            f"{result.checks_per_second:.1f} checks/s; lost {tally.lost}, doubled "
            f"{tally.doubled}, could not test {tally.errors}"
        )
        return result

    def fault_pass(self, ingest: bool = True, load: bool = True, second_beat: bool = True):
        """Every domain due, faults one after the other, ingestion and a reader meanwhile."""
        o, c = self.options, self.cluster
        page_load = None
        if load and o.web:
            page_load = PageLoad(
                c.web_port,
                f"{self.ids['session_cookie']}={self.ids['session']}",
                self.pages(),
            )
            page_load.start()
        ingesters = [w for n, w in c.workers.items() if n.startswith("ingest")]
        ingest_cpu = observe.cpu_seconds(self._pids(ingesters))
        started = time.monotonic()
        since = self.make_all_due()
        if ingest and self.ids["mailboxes"]:
            c.sql.execute("UPDATE reports_mailbox SET next_poll_at = %s", (since,))
            c.send(POLL)
        checks = sorted(n for n in c.workers if n.startswith("checks"))
        plan = [
            ("SIGKILL a check worker", lambda: faults.kill_worker(c, checks[0])),
            ("SIGKILL a pool process", lambda: faults.kill_pool_child(c, checks[-1])),
            ("restart Redis", lambda: faults.restart_redis(c)),
            ("drop PostgreSQL connections", lambda: faults.drop_database_connections(c)),
            ("pause DNS", lambda: faults.pause_dns(c, o.dns_pause)),
        ]
        if second_beat:
            plan.append(("a second beat", lambda: f"started beat pid {c.start_beat().process.pid}"))
        events = []

        def inject():
            elapsed = time.monotonic() - started
            if plan and elapsed >= o.fault_every * (len(events) + 0.5):
                name, action = plan.pop(0)
                before = observe.checked_count(c.sql, self.ids["organization"], since)
                at = time.monotonic()
                what = action()
                events.append(
                    {
                        "fault": name,
                        "what": what,
                        "at_s": round(at - started, 1),
                        "checked_before": before,
                        "fault_at": at,
                    }
                )
                self.log(f"  t+{at - started:.0f} s: {what}")

        seconds = self.wait_for_pass(
            since, started, on_tick=inject, settle=lambda: not plan and self.idle_for(10)
        )
        while plan:  # a pass faster than the plan still gets every fault
            inject()
            time.sleep(0.5)
        self.wait_drained()
        # The clock moves on, in production's order: the reaper (half an hour on) makes the
        # domains claimed without a run due, the next dispatch checks them, and only then (two
        # hours on) Redis gives back what the killed workers held, which finds them checked.
        clock = {"reaped": faults.reap_late(c)}
        self.cluster.send(DISPATCH)
        if ingest and self.ids["mailboxes"]:
            # A pass that failed (its connection dropped) waits for the mailbox's next poll,
            # five minutes on: that time passes too.
            c.sql.execute("UPDATE reports_mailbox SET next_poll_at = now()")
            c.send(POLL)
        seconds = self.wait_for_pass(since, started)
        self.wait_drained()
        clock["redelivered"] = faults.redeliver(c)
        self.log(f"  queues drained; the clock moved on: {clock}")
        self.wait_drained()
        web = page_load.stop() if page_load else {}
        tally = observe.tally(c.sql, self.ids["organization"], since)
        result = PassResult(
            len(checks),
            o.domains,
            seconds,
            tally,
            o.domains / seconds,
            events,
            observe.stuck(c.sql, self.ids["organization"]),
            self.settled_depths(),
        )
        for event in events:
            event["recovery_s"] = observe.recovery(self.samples, event.pop("fault_at"), event)
        result.clock = clock
        result.web = web
        result.alerts = {"events_alerted": len(self.sink.events), "sent_twice": self.sink.twice}
        result.reports = self.report_counts() if ingest else {}
        if result.reports.get("records"):
            # The ingest workers did nothing else: fetching, parsing, storing and enriching.
            # Only the workers that lived through the pass count (one killed would undercount).
            spent = observe.cpu_seconds(self._pids(ingesters)) - ingest_cpu
            result.reports["cpu_ms_per_record"] = round(spent * 1000 / result.reports["records"], 2)
        result.beats = self.beats_seen()
        result.restarts = {n: w.restarts for n, w in c.workers.items() if w.restarts}
        return result

    @staticmethod
    def _pids(workers) -> list[int]:
        return [p for w in workers if w.process for p in [w.process.pid, *w.pool_children()]]

    def pages(self) -> list[str]:
        detail = f"/domains/{self.ids['some_domain']}/"
        return ["/domains/", detail, "/reports/", "/reports/mailboxes/"]

    def report_counts(self) -> dict:
        sql, o = self.cluster.sql, self.options
        reports, distinct = sql.execute(
            "SELECT count(*), count(DISTINCT report_id) FROM reports_aggregatereport"
        ).fetchone()
        records = sql.execute("SELECT count(*) FROM reports_aggregaterecord").fetchone()[0]
        left = (
            sum(len(self.dovecot.messages(b, "INBOX")) for b in self._users())
            if (self.dovecot)
            else 0
        )
        return {
            "expected": o.mailboxes * o.reports,
            "reports": reports,
            "distinct": distinct,
            "records": records,
            "left_in_inbox": left,
        }

    def _users(self) -> list[str]:
        return [u for u in self.dovecot.users if u.startswith("reports")]

    def beats_seen(self) -> dict:
        rows = self.cluster.sql.execute(
            "SELECT identity FROM mailsec_beatheartbeat"
            " WHERE seen_at > now() - interval '150 seconds'"
        ).fetchall()
        banner = None
        if self.options.web:
            load = PageLoad(
                self.cluster.web_port, f"{self.ids['session_cookie']}={self.ids['session']}", ["/"]
            )
            status, body = load.get("/domains/")
            banner = status == 200 and b"schedulers (<code>celery beat</code>) are running" in body
        return {"seen": len(rows), "staff_banner": banner}
