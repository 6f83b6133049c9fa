"""What the harness measures, from the database (SQL) and Redis, never from the workers' word:
how many scheduled runs each domain got since the clock started, what is stuck, what the
queues still hold, and the webhook sink that counts each alert as it arrives."""

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Tally:
    domains: int
    checked: int  # domains with a scheduled run since the start
    lost: int  # domains with none
    doubled: int  # domains with more than one
    errors: int  # runs that could not test (SERVFAIL, timeouts: honest verdicts, not losses)
    last_finished: datetime | None

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0


def tally(sql, organization: int, since: datetime) -> Tally:
    row = sql.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE runs >= 1),
               count(*) FILTER (WHERE runs = 0),
               count(*) FILTER (WHERE runs > 1),
               coalesce(sum(errors), 0)::int,
               max(last)
        FROM (
            SELECT d.id,
                   count(r.id) AS runs,
                   count(r.id) FILTER (WHERE r.status = 'error') AS errors,
                   max(r.finished_at) AS last
            FROM domains_domain d
            LEFT JOIN domains_checkrun r
              ON r.domain_id = d.id AND r.trigger = 'schedule' AND r.started_at >= %s
            WHERE d.organization_id = %s
            GROUP BY d.id
        ) per_domain
        """,
        (since, organization),
    ).fetchone()
    return Tally(*row)


def checked_count(sql, organization: int, since: datetime) -> int:
    return sql.execute(
        "SELECT count(DISTINCT r.domain_id) FROM domains_checkrun r JOIN domains_domain d"
        " ON d.id = r.domain_id WHERE d.organization_id = %s AND r.trigger = 'schedule'"
        " AND r.started_at >= %s",
        (organization, since),
    ).fetchone()[0]


def stuck(sql, organization: int) -> dict[str, int]:
    """What says it is under way: a domain claimed (its next check moved on) without a run
    since, manual checks and mailbox passes not settled, alerts not delivered."""
    return {
        "claimed_unchecked": sql.execute(
            "SELECT count(*) FROM domains_domain WHERE organization_id = %s"
            " AND next_check_at - check_interval > coalesce(last_checked_at, '-infinity')",
            (organization,),
        ).fetchone()[0],
        "manual_running": sql.execute(
            "SELECT count(*) FROM domains_manualcheck WHERE state IN ('queued', 'running')"
        ).fetchone()[0],
        "mailbox_passes_running": sql.execute(
            "SELECT count(*) FROM reports_mailboxpass WHERE state IN ('queued', 'running')"
        ).fetchone()[0],
        "alerts_pending": sql.execute(
            "SELECT count(*) FROM domains_alertdelivery WHERE state IN ('pending', 'retrying')"
        ).fetchone()[0],
    }


def queue_depths(redis_client, prefix: str) -> dict[str, int]:
    """Messages waiting in each queue, and those taken but not acknowledged."""
    from mailsec.queues import NAMES

    depths = {name: redis_client.llen(prefix + name) for name in NAMES}
    depths["unacked"] = redis_client.hlen("unacked")
    return depths


def recovery(samples: list[tuple[float, int]], at: float, event: dict, window=5.0):
    """Seconds from a fault until the checks ran again at half the rate of the `window`
    before it (None when they never did, or nothing was left to check)."""

    def rate(start: float, end: float) -> float | None:
        inside = [(t, n) for t, n in samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    before = rate(at - window, at)
    if not before:
        return None
    for t, _n in samples:
        if t > at + window:
            after = rate(t - window, t)
            if after is not None and after >= before / 2:
                return round(t - window - at, 1) if t - window > at else 0.0
    return None


def wait_until(predicate, timeout: float, every: float = 0.5, on_tick=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        if on_tick is not None:
            on_tick()
        time.sleep(every)


class WebhookSink:
    """The alerts' webhook, on loopback: counts every event as it arrives, so an alert sent
    twice is seen even when the database says it was sent once."""

    def __init__(self):
        self.events: Counter = Counter()
        self.posts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                    for event in payload.get("events", []):
                        key = (event["domain"], event["kind"], event["created_at"])
                        sink.events[key] += 1
                    sink.posts += 1
                finally:
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def twice(self) -> int:
        return sum(1 for count in self.events.values() if count > 1)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


COST_TABLES = [
    "domains_checkrun",
    "domains_finding",
    "domains_domainevent",
    "reports_aggregatereport",
    "reports_aggregaterecord",
    "reports_dailyrollup",
    "reports_rawinput",
]


def costs(sql) -> dict:
    """Rows and bytes (table, TOAST and indexes) of the tables that grow, and what one run
    costs: its queries, and its details (the categories JSON that retention strips)."""
    tables = {}
    for table in COST_TABLES:
        rows, size = sql.execute(
            f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"  # noqa: S608
        ).fetchone()
        tables[table] = {"rows": rows, "bytes": size, "bytes_per_row": size // max(rows, 1)}
    runs = sql.execute(
        "SELECT avg(queries)::int, avg(pg_column_size(categories))::int,"
        " avg(pg_column_size(r.*))::int FROM domains_checkrun r WHERE trigger = 'schedule'"
    ).fetchone()
    return {
        "tables": tables,
        "queries_per_run": runs[0],
        "details_bytes_per_run": runs[1],
        "row_bytes_per_run": runs[2],
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes and their waited-for children (/proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")
