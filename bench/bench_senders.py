"""Sender enrichment of 100,000 distinct source addresses, and what it costs ingestion.

    .venv/bin/python bench/bench_senders.py [--addresses 100000] [--per-report 1000]
                                            [--databases sqlite postgres] [--repeat 3]

A knot on loopback serves reverse DNS for every address (10.0.0.0/8): 30% are named under
amazonses.com and 30% under an ISP's domain, both forward-confirmed; 20% have a PTR name that
does not resolve back; 20% have no PTR record. The addresses arrive in generated aggregate
reports of `--per-report` records, each record a new address. Each round, in fresh processes
and freshly migrated databases, three ways of importing the reports (`ingest_input`, as
`import_reports` does), interleaved so that they meet the same drift in this machine's speed.
The first half of the reports is imported untimed; after a pause past the drain's first run
(NUDGE_AFTER), the import of the second half is what is timed:

- **off**: the enrichment hook replaced by a no-op: ingestion as it was before senders.
- **noted**: the hook as it is: a row in PendingSenders in the report's transaction, and a
  drain task published at most once per NUDGE_AFTER seconds; no worker takes it: the cost the
  hook itself adds to ingestion.
- **background**: the same, with a real `celery worker` (one process) on the `ingest` queue
  looking up and storing the first half's addresses (paced) while the second half is
  imported, on the same machine (the run fails unless the worker was storing addresses
  before and still had some to do after the timed import): ingestion slowed by the
  competition for the CPU and the database, and the time from the first report until every
  address is known.

Printed: medians of the import time and the slowdown against "off", and of the time from the
first report until the worker has stored all 100,000 addresses. Nothing leaves the machine:
the test suite's network guard is installed in every process.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
DOMAIN = "bench.example"
BEGIN = 1_700_000_000
MODES = ("off", "noted", "background")
SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"


def address(k: int) -> str:
    return f"10.{k // 65536 % 256}.{k // 256 % 256}.{k % 256}"


def zones(count: int) -> dict[str, str]:
    reverse, ses, isp = [SOA], [SOA], [SOA]
    for k in range(count):
        ip, kind = address(k), k % 10
        _, b, c, d = ip.split(".")
        if kind < 3:
            name = f"a{k}.smtp-out.amazonses.com"
            ses.append(f"a{k}.smtp-out A {ip}\n")
        elif kind < 6:
            name = f"mta{k}.bench-isp.example"
            isp.append(f"mta{k} A {ip}\n")
        elif kind < 8:
            name = f"host{k}.unconfirmed.example"  # its zone has no such name
        else:
            continue  # no PTR record
        reverse.append(f"{d}.{c}.{b} PTR {name}.\n")
    return {
        "10.in-addr.arpa": "".join(reverse),
        "amazonses.com": "".join(ses),
        "bench-isp.example": "".join(isp),
        "unconfirmed.example": SOA,
    }


def report(n: int, per_report: int) -> bytes:
    rows = []
    for k in range(n * per_report, (n + 1) * per_report):
        passing = k % 10 < 6
        verdict = "pass" if passing else "fail"
        rows.append(
            f"<record><row><source_ip>{address(k)}</source_ip><count>{1 + k % 7}</count>"
            f"<policy_evaluated><disposition>none</disposition><dkim>{verdict}</dkim>"
            f"<spf>{verdict}</spf></policy_evaluated></row><identifiers>"
            f"<header_from>{DOMAIN}</header_from></identifiers><auth_results><dkim>"
            f"<domain>{DOMAIN}</domain><selector>s1</selector><result>{verdict}</result></dkim>"
            f"<spf><domain>{DOMAIN}</domain><result>{verdict}</result></spf></auth_results>"
            "</record>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feedback><report_metadata>'
        "<org_name>bench.example.net</org_name><email>noreply@bench.example.net</email>"
        f"<report_id>senders-{n}</report_id><date_range><begin>{BEGIN + n * 86400}</begin>"
        f"<end>{BEGIN + n * 86400 + 86399}</end></date_range></report_metadata>"
        f"<policy_published><domain>{DOMAIN}</domain><p>none</p></policy_published>\n"
        + "".join(rows)
        + "</feedback>\n"
    ).encode()


# --- one measured process ------------------------------------------------------------------


def run(mode: str, database: str, workdir: str, dns: str, redis_url: str, args) -> dict:
    """In a child process: a fresh database, all the reports imported, the worker awaited."""
    os.environ["MAILSEC_VAR_DIR"] = workdir
    os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mailsec.settings"
    os.environ["REDIS_URL"] = redis_url
    os.environ["MAILSEC_QUEUE_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}-"
    os.environ["MAILSEC_DNS_NAMESERVERS"] = dns
    if database == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    else:
        os.environ["DATABASE_URL"] = os.environ.get(
            "POSTGRES_URL", "postgres://root@127.0.0.1/postgres"
        )
    from tests import netguard

    netguard.install()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tests.servers import CeleryWorker, database_url

    test_db = None
    if database == "sqlite":
        call_command("migrate", verbosity=0)
    else:
        connection.settings_dict["TEST"]["NAME"] = f"mailsec_bench_{os.getpid()}"
        test_db = connection.creation.create_test_db(verbosity=0, serialize=False)
    worker = None
    try:
        from domains.models import Organization
        from reports import ingest
        from reports.models import SourceAddress
        from reports.senders import enrich

        if mode == "off":
            ingest.enrich_later = lambda report_id: None
        team = Organization.objects.create(name="bench")
        reports = [report(n, args.per_report) for n in range(args.addresses // args.per_report)]
        if mode == "background":
            log = Path(workdir) / "worker.log"
            worker = CeleryWorker(
                redis_url=redis_url,
                database=database_url(connection.settings_dict),
                queue_prefix=os.environ["MAILSEC_QUEUE_PREFIX"],
                log=log,
                extra_env={"MAILSEC_DNS_NAMESERVERS": dns},
                concurrency=1,
            )
            _wait_ready(log)
        # A long-running process (a worker importing reports) has Celery loaded and its Redis
        # connection open: so has this one before the clock starts, in every mode (a drain
        # with nothing to drain yet), so that only the hook differs between "off" and "noted"
        # (with Celery loaded in "noted" alone, "noted" measured 8% more CPU than "off" in
        # three rounds of five, where the hook itself costs 0.5%).
        from reports.tasks import drain_pending_senders

        drain_pending_senders.delay()

        def load(batch) -> None:
            for n, data in batch:
                [outcome] = ingest.ingest_input(data, f"r{n}.xml", via="command", organization=team)
                if outcome.status != "imported":
                    raise SystemExit(f"not imported: {outcome}")

        # The first half is imported untimed: in the background mode its addresses are what
        # the worker is looking up (and storing) while the second half's import is timed.
        half = len(reports) // 2
        first = time.perf_counter()
        load(list(enumerate(reports))[:half])
        # Every mode waits alike, past the drain's first run (NUDGE_AFTER seconds after the
        # first report); in the background the worker is then busy with the first half.
        time.sleep(max(0.0, enrich.NUDGE_AFTER + 2 - (time.perf_counter() - first)))
        known = SourceAddress.objects.exclude(looked_up_at=None).count
        known_before = known()
        started, used = time.perf_counter(), time.process_time()
        load(list(enumerate(reports))[half:])
        imported, cpu = time.perf_counter() - started, time.process_time() - used
        known_after = known()
        enriched, hook_ms = None, None
        if mode == "off":
            hook_ms = _hook_cost(team)
        if mode == "background":
            if not 0 < known_before <= known_after < args.addresses:
                raise SystemExit(
                    f"the worker was not enriching throughout the timed import: "
                    f"{known_before} then {known_after} addresses known"
                )
            started = first
            while SourceAddress.objects.exclude(looked_up_at=None).count() < args.addresses:
                time.sleep(0.5)
            enriched = time.perf_counter() - started
            found = SourceAddress.objects.filter(fcrdns=True).count()
            if found != args.addresses * 6 // 10:
                raise SystemExit(f"{found} addresses forward-confirmed, not 60%")
    finally:
        if worker is not None:
            worker.stop()
        if test_db:
            connection.close()
            connection.creation.destroy_test_db(test_db, verbosity=0)
    # The importing process's CPU time (SQLite's work included): what the hook itself costs,
    # less swayed than the clock by other work on a shared machine.
    return {
        "imported": imported,
        "cpu": cpu,
        "enriched": enriched,
        "known": [known_before, known_after],
        "hook_ms": hook_ms,
    }


def _hook_cost(team, calls: int = 1000) -> float:
    """The enrichment hook's own cost (reports.senders.enrich.enrich_later: a PendingSenders
    row, the drain's nudge once committed), in CPU ms per report: each call in a transaction
    of its own, its commit included (in ingestion it shares the report's)."""
    from django.db import transaction

    from reports.models import AggregateReport, PendingSenders
    from reports.senders import enrich

    pks = list(AggregateReport.objects.values_list("pk", flat=True))
    used = time.process_time()
    for n in range(calls):
        with transaction.atomic():
            enrich.enrich_later(pks[n % len(pks)])
    spent = time.process_time() - used
    PendingSenders.objects.all().delete()
    return 1000 * spent / calls


def _wait_ready(log: Path) -> None:
    deadline = time.monotonic() + 60
    while b" ready." not in (log.read_bytes() if log.exists() else b""):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


# --- the driver -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--per-report", type=int, default=1000)
    parser.add_argument("--databases", nargs="+", default=["sqlite"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=5, metavar="ARG")
    args = parser.parse_args()
    if args.child:
        mode, database, workdir, dns, redis_url = args.child
        print(json.dumps(run(mode, database, workdir, dns, redis_url, args)))
        return

    from tests.knot import KnotServer
    from tests.servers import RedisServer

    top = Path(tempfile.mkdtemp(prefix="bench-senders-"))
    knot = KnotServer(top / "knot", zones(args.addresses))
    knot.start()
    (top / "redis").mkdir()
    redis = RedisServer(top / "redis")
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        for round_ in range(args.repeat):
            for database in args.databases:
                for mode in MODES:
                    workdir = top / f"{database}-{mode}-{round_}"
                    workdir.mkdir()
                    sizes = [f"--addresses={args.addresses}", f"--per-report={args.per_report}"]
                    found = child(sizes, mode, database, workdir, knot, redis)
                    results.setdefault((database, mode), []).append(found)
                    print(database, mode, round_, found, file=sys.stderr, flush=True)
    finally:
        redis.stop()
        knot.stop()
        shutil.rmtree(top, ignore_errors=True)
    _print(results, args)


def child(sizes, mode, database, workdir, knot, redis) -> dict:
    out = subprocess.run(  # noqa: S603  (this very script)
        [
            PYTHON, __file__, *sizes, "--child", mode, database, str(workdir),
            f"{knot.host}:{knot.port}", redis.url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print(results: dict, args) -> None:
    print(f"\n{args.addresses:,} distinct addresses in reports of {args.per_report:,} records;")
    print("the import of the second half timed, the worker enriching the first in the background")
    print("| database | ingestion | import (s) | slowdown | CPU (s) | CPU more | all known (s) |")
    print("|---|---|---|---|---|---|---|")
    for database in args.databases:
        base = statistics.median(r["imported"] for r in results[database, "off"])
        base_cpu = statistics.median(r["cpu"] for r in results[database, "off"])
        for mode in MODES:
            runs = results[database, mode]
            imported = statistics.median(r["imported"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            slowdown = f"{100 * (imported / base - 1):+.1f}%" if mode != "off" else ""
            more = f"{100 * (cpu / base_cpu - 1):+.1f}%" if mode != "off" else ""
            each = ", ".join(f"{r['imported']:.2f}" for r in runs)
            enriched = [r["enriched"] for r in runs if r["enriched"] is not None]
            known = f"{statistics.median(enriched):.1f}" if enriched else ""
            print(
                f"| {database} | {mode} | {imported:.2f} ({each}) | {slowdown} | {cpu:.2f} "
                f"| {more} | {known} |"
            )
        hook = statistics.median(r["hook_ms"] for r in results[database, "off"])
        per_report = 1000 * base_cpu / (args.addresses // args.per_report // 2)
        print(
            f"{database}: the hook alone {hook:.2f} ms of CPU per report, "
            f"{100 * hook / per_report:.1f}% of a report's import ({per_report:.1f} ms)"
        )


if __name__ == "__main__":
    main()
