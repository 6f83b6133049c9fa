"""The report analytics pages with 1,000 and with 1,000,000 aggregate records (issue 15).

    .venv/bin/python bench/bench_analytics.py [--records 1000 1000000] [--repeat 5]

For each size, in a fresh process and a fresh database: one team, one domain, `records / 100`
aggregate reports of 100 records each spread evenly over the last 400 days (10,000 reports for
a million records), their sources drawn from 2,000 addresses with a long tail (a few senders
carry most of the mail, as in real reports), one in five failing DMARC; SMTP TLS reports (two
a day at the large size) with failure details, and failure reports. Reports and records are
bulk-inserted (COPY on PostgreSQL); the rollups are made by the ingestion's own statement,
reports.ingest.add_to_rollups, report by report.

Then each analytics page is rendered as the team's owner through Django's test client: the
domain's reports page at each preset range, the team overview, the SMTP TLS page, the senders
page and a sender's, the reports index with filters. Both sets stay up, each in its process,
and render each page in turn (a warm-up each, then small, large, small, large... `--repeat`
times), so that the sizes are compared under the same conditions. Printed: each page's
median time and its number of SQL queries, per size, and the ratio of the large to the small.

Database: a throwaway SQLite file, unless DATABASE_URL is set (PostgreSQL): then a throwaway
test database is created there, vacuumed and analyzed once built (VACUUM FULL: the rollups
compacted as autovacuum keeps a live installation's, see build()) and dropped at the end.
Nothing leaves the machine: the test suite's network guard is installed.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "bench.example"
DAYS = 400
RECORDS_PER_REPORT = 100
ADDRESSES = 2000
REPORTERS = ["google.com", "Yahoo", "Mail.Ru", "Enterprise Outlook", "comcast.net", "web.de"]

SENDER = "net%3A10.0.0.0%2F24"  # the block of the busiest address, 10.0.0.1
PAGES = [
    ("domain, last 7 days", "/reports/domain/{pk}/?range=7"),
    ("domain, last 30 days", "/reports/domain/{pk}/?range=30"),
    ("domain, last 90 days", "/reports/domain/{pk}/?range=90"),
    ("domain, last 365 days", "/reports/domain/{pk}/?range=365"),
    ("team overview, 30 days", "/reports/overview/?range=30"),
    ("team overview, 365 days", "/reports/overview/?range=365"),
    ("SMTP TLS, 30 days", "/reports/domain/{pk}/tls/?range=30"),
    ("SMTP TLS, 365 days", "/reports/domain/{pk}/tls/?range=365"),
    ("senders, last 30 days", "/reports/domain/{pk}/senders/?range=30"),
    ("senders, last 365 days", "/reports/domain/{pk}/senders/?range=365"),
    # The busiest sender (the first address's /24 block): its chart and numbers.
    ("a sender, last 30 days", "/reports/domain/{pk}/senders/one/?range=30&sender=" + SENDER),
    ("a sender, last 365 days", "/reports/domain/{pk}/senders/one/?range=365&sender=" + SENDER),
    ("index", "/reports/"),
    ("index, filtered and sorted", "/reports/?range=90&reporter=Yahoo&result=fail&sort=failing"),
    ("index, 365 days, by domain", "/reports/?range=365&domain=bench.example&sort=messages"),
]


def setup_django(workdir: str):
    sys.path.insert(0, str(ROOT))
    os.environ["MAILSEC_VAR_DIR"] = workdir
    os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mailsec.settings"
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    import warnings

    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    from tests import netguard

    netguard.install()
    import django

    django.setup()


def spaced(n: int, count: int) -> int:
    """The day (0 the first of DAYS) of the nth of `count` reports spaced evenly, the last
    yesterday: a domain's latest report is a day old at both sizes. (Counted from the first
    day instead, the small set's ten reports, 40 days apart, left its last 30 days empty, and
    its senders and TLS pages over 30 days measured an empty page.)"""
    return DAYS - 2 - (count - 1 - n) * (DAYS - 1) // count


def build(records: int, rng: random.Random) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from domains.models import Domain, Membership, Organization, Role
    from reports import ingest, models

    started = time.perf_counter()
    team = Organization.objects.create(name="Bench")
    owner = get_user_model().objects.create_user("owner")
    Membership.objects.create(organization=team, user=owner, role=Role.OWNER)
    domain = Domain.objects.create(organization=team, name=DOMAIN)
    raw = models.RawInput.objects.create(
        organization=team, sha256="0" * 64, name="bench", size=0, content=b"",
        source="command", status="imported",
    )  # fmt: skip
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = (now - timedelta(days=DAYS - 1)).replace(hour=0)
    reports = max(1, records // RECORDS_PER_REPORT)
    weights = [1 / (rank + 1) for rank in range(ADDRESSES)]
    addresses = [f"10.{i // 250}.{i % 250}.{1 + i % 7}" for i in range(ADDRESSES)]
    rows = []
    for n in range(reports):
        begin = first + timedelta(days=spaced(n, reports), hours=rng.choice((0, 0, 0, 22)))
        rows.append(
            models.AggregateReport(
                organization=team, raw=raw, org_name=rng.choice(REPORTERS),
                report_id=f"bench-{n}", domain=DOMAIN, begin=begin,
                end=begin + timedelta(seconds=86399), p="quarantine", record_count=100,
            )
        )  # fmt: skip
    with transaction.atomic():
        stored = models.AggregateReport.objects.bulk_create(rows, batch_size=2000)
    dkim = json.dumps([{"domain": DOMAIN, "selector": "s1", "result": "pass"}])
    spf = json.dumps([{"domain": DOMAIN, "scope": "mfrom", "result": "pass"}])
    with transaction.atomic(), ingest.RecordWriter() as writer:
        for report in stored:
            batch, messages, passed = [], 0, 0
            for ip in rng.choices(addresses, weights, k=RECORDS_PER_REPORT):
                count = rng.randint(1, 20)
                failing = rng.random() < 0.2
                result = "fail" if failing else "pass"
                disposition = rng.choice(("none", "quarantine")) if failing else "none"
                batch.append(
                    (report.pk, ip, count, disposition, result, result, DOMAIN, DOMAIN, "",
                     "[]", dkim, spf)
                )  # fmt: skip
                messages += count
                passed += 0 if failing else count
            writer.add(batch)
            report.message_count, report.dmarc_pass = messages, passed
    with transaction.atomic():
        models.AggregateReport.objects.bulk_update(
            stored, ["message_count", "dmarc_pass"], batch_size=2000
        )
        for report in stored:
            ingest.add_to_rollups(report)
    _tls_and_failures(team, raw, first, reports, rng)
    if connection.vendor == "postgresql":
        # The state a live installation's autovacuum keeps its tables in: statistics (without
        # them PostgreSQL planned the TLS policies' join as a nested loop over 800 x 800 rows,
        # 70 ms), and rollup tables without the dead rows of this build, which updated each
        # monthly row 37 times a minute with no vacuum between (106 MB for 27,662 rows,
        # 6 MB compacted; autovacuum keeps dead rows to about a fifth of a table).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (FULL, ANALYZE)")
    return {
        "team": team,
        "owner": owner,
        "domain": domain,
        "seconds": time.perf_counter() - started,
        "records": models.AggregateRecord.objects.count(),
        "reports": len(stored),
        "rollups": models.DailyRollup.objects.count(),
        "monthly": models.MonthlyRollup.objects.count(),
        "database": connection.vendor,
    }


def _tls_and_failures(team, raw, first: datetime, reports: int, rng) -> None:
    from reports import models

    tls_reports = min(2 * DAYS, max(4, reports // 12))
    kinds = ["starttls-not-supported", "certificate-expired", "validation-failure"]
    made = models.TlsReport.objects.bulk_create(
        models.TlsReport(
            organization=team, raw=raw, org_name=rng.choice(("Google Inc.", "Microsoft")),
            report_id=f"tls-{n}", domain=DOMAIN,
            begin=first + timedelta(days=spaced(n, tls_reports)),
            end=first + timedelta(days=spaced(n, tls_reports), seconds=86399),
            successful=1000, failed=10,
        )
        for n in range(tls_reports)
    )  # fmt: skip
    models.TlsPolicy.objects.bulk_create(
        models.TlsPolicy(
            report=report, policy_type="sts", policy_domain=DOMAIN,
            mx_hosts=[f"mx{n % 2}.{DOMAIN}"], successful=1000, failed=10,
            failure_details=[{
                "result-type": rng.choice(kinds), "receiving-mx-hostname": f"mx{n % 2}.{DOMAIN}",
                "receiving-ip": f"192.0.2.{n % 2 + 1}", "failed-session-count": 10,
            }],
        )
        for n, report in enumerate(made)
    )  # fmt: skip
    models.FailureReport.objects.bulk_create(
        models.FailureReport(
            organization=team, raw=raw, domain=DOMAIN, org_name="linkedin.com",
            feedback_type="auth-failure", auth_failure="dmarc", source_ip="203.0.113.9",
            arrival_date=first + timedelta(days=spaced(n, max(1, reports // 5))),
        )
        for n in range(max(1, reports // 5))
    )  # fmt: skip


PROTOCOL = "@@ "  # the children's answers on stdout (anything else there is not one)


def serve(records: int) -> None:
    """A child: builds its set, says so, then renders the page asked for on each line of
    stdin ("N": PAGES[N]) and answers with its time and queries, until stdin closes."""
    workdir = tempfile.mkdtemp(prefix="mailsec-bench-analytics-")
    setup_django(workdir)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    def say(message: dict) -> None:
        print(PROTOCOL + json.dumps(message), flush=True)

    test_db = None
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0)
    else:
        connection.settings_dict["TEST"]["NAME"] = f"mailsec_bench_analytics_{os.getpid()}"
        test_db = connection.creation.create_test_db(verbosity=0, serialize=False)
    # Pages render without a collectstatic manifest, as in the tests.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    try:
        built = build(records, random.Random(7))  # noqa: S311  (repeatable test data)
        keep = ("seconds", "records", "reports", "rollups", "monthly", "database")
        say({k: built[k] for k in keep})
        client = Client(HTTP_HOST="localhost")
        client.force_login(built["owner"])
        with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
            for line in sys.stdin:
                url = PAGES[int(line)][1].format(pk=built["domain"].pk)
                with CaptureQueriesContext(connection) as captured:
                    started, used = time.perf_counter(), time.process_time()
                    response = client.get(url)
                    elapsed, spent = time.perf_counter() - started, time.process_time() - used
                if response.status_code != 200:
                    raise SystemExit(f"{url} answered {response.status_code}")
                say({"ms": 1000 * elapsed, "cpu_ms": 1000 * spent, "queries": len(captured)})
    finally:
        if test_db:
            connection.creation.destroy_test_db(test_db, verbosity=0)
        connection.close()
        shutil.rmtree(workdir, ignore_errors=True)  # the SQLite set: 300 MB at a million


class Child:
    def __init__(self, records: int):
        self.records = records
        self.process = subprocess.Popen(  # noqa: S603  (this very script)
            [sys.executable, __file__, "--child", str(records)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL) :])
        raise SystemExit(f"the {self.records:,}-record child ended (exit {self.process.wait()})")

    def render(self, page: int) -> dict:
        self.process.stdin.write(f"{page}\n")
        self.process.stdin.flush()
        return self.answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child)
        return
    children = []
    try:
        for records in args.records:  # built one after the other, not side by side
            children.append(child := Child(records))
            b = child.answer()
            print(
                f"{b['database']}: {b['records']:,} records in {b['reports']:,} reports, "
                f"{b['rollups']:,} daily and {b['monthly']:,} monthly rollup rows, "
                f"built in {b['seconds']:.1f} s",
                flush=True,
            )
        # Each page rendered by every set in turn, `repeat` times after a warm-up each: the
        # sizes compared are measured side by side in time, so that this machine's slow and
        # fast spells (identical runs minutes apart differed by up to 1.7x) sway both alike.
        results = {child.records: [] for child in children}
        for page, (label, _path) in enumerate(PAGES):
            for child in children:
                child.render(page)
            samples = {child.records: [] for child in children}
            for _ in range(args.repeat):
                for child in children:
                    samples[child.records].append(child.render(page))
            for records, runs in samples.items():
                results[records].append(
                    {
                        "page": label,
                        "ms": statistics.median(r["ms"] for r in runs),
                        # This process's CPU time (SQLite's work included, PostgreSQL's not).
                        "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
                        "queries": runs[-1]["queries"],
                    }
                )
    finally:
        for child in children:
            child.close()
    small, large = args.records[0], args.records[-1]
    print(f"\n{'page':<26} {small:>9,} rec {large:>11,} rec  ratio   CPU {small:,} / {large:,}")
    for before, after in zip(results[small], results[large], strict=True):
        print(
            f"{before['page']:<26} {before['ms']:>9.1f} ms {after['ms']:>11.1f} ms "
            f"{after['ms'] / before['ms']:>5.1f}x   {before['cpu_ms']:.1f} / "
            f"{after['cpu_ms']:.1f} ms {after['cpu_ms'] / before['cpu_ms']:>5.1f}x   "
            f"queries {before['queries']} / {after['queries']}"
        )


if __name__ == "__main__":
    main()
