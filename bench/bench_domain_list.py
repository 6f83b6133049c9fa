"""The domains list (and one domain's page) with a large portfolio and a year of history.

    .venv/bin/python bench/bench_domain_list.py [--domains 2000] [--days 365] [--every 6]
                                                [--repeat 5] [--keep]

Builds `--domains` domains of one team, each with a run every `--every` hours for `--days` days
(2,000 x 1,460 = 2.9 M runs by default; runs older than 90 days carry only their summary, as
retention.py leaves them; the latest run of each domain has its records and one to three
findings), then renders pages as the team's owner through Django's test client: the first page
of /domains/, sorted and filtered variants, and one domain's page. Prints the build time, each
page's median render time of `--repeat` and its number of SQL queries.

Database: a throwaway SQLite file in a temporary directory (DATABASE_URL is pointed at it
before Django starts), unless DATABASE_URL is already set (PostgreSQL): then a throwaway
test_<name> database is created there and dropped at the end. Nothing leaves the machine: the
test suite's network guard is installed here too.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="mailsec-bench-list-"))
USE_SQLITE = not os.environ.get("DATABASE_URL")
if USE_SQLITE:
    os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
os.environ["MAILSEC_VAR_DIR"] = str(WORKDIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from domains.checks import ORDER  # noqa: E402
from domains.models import (  # noqa: E402
    CheckRun,
    Domain,
    DomainEvent,
    EventKind,
    Finding,
    Membership,
    Organization,
    Role,
)
from domains.scoring import A_PLUS_MIN_SCORE, GRADES  # noqa: E402
from tests import netguard  # noqa: E402

netguard.install()
# WhiteNoise looks for collected static files, which a benchmark does not need.
warnings.filterwarnings("ignore", "No directory at", UserWarning)

BATCH = 50_000  # runs stored in one transaction
DETAIL_DAYS = 90
FINDINGS = [
    ("mta_sts.missing", "low", "No MTA-STS policy"),
    ("dmarc.missing", "high", "No DMARC record"),
    ("dkim.weak_key", "medium", "A DKIM key is shorter than 2048 bits"),
    ("spf.all_pass", "critical", "SPF allows the whole internet (+all)"),
    ("tls_rpt.missing", "low", "No TLS-RPT record"),
]
PAGES = [
    ("first page", "/domains/"),
    ("sorted by trend", "/domains/?sort=-trend"),
    ("grade B, by last check", "/domains/?grade=B&sort=-checked"),
    ("search, by score", "/domains/?q=shop01&sort=score"),
    ("page 10", "/domains/?page=10"),
]


def grade_of(score: int | None) -> str:
    if score is None:
        return ""
    grade = next(letter for floor, letter in GRADES if score >= floor)
    return "A+" if grade == "A" and score >= A_PLUS_MIN_SCORE else grade


@cache
def summary(score: int | None) -> dict:
    status = "error" if score is None else ("pass" if score >= 80 else "warn")
    return {name: {"status": status, "score": score} for name in ORDER}


def details(domain: str, score: int) -> dict:
    categories = {}
    for name in ORDER:
        categories[name] = {
            "status": "pass",
            "score": score,
            "applicable": name != "bimi",
            "records": {"TXT": [f"v=example; for={name}.{domain}"]},
            "findings": [],
        }
    categories["mx"]["records"] = {"MX": [f"10 mx1.{domain}.", f"20 mx2.{domain}."]}
    return categories


def history(domain: Domain, runs: int, every: timedelta, now: datetime, rng) -> list[dict]:
    """The domain's runs, oldest first: scores wander around the domain's own level (so the
    portfolio spreads over every grade), 1 % of runs unscored."""
    detail_cutoff = now - timedelta(days=DETAIL_DAYS)
    level = rng.randint(30, 100)
    score, rows = level, []
    for n in range(runs, 0, -1):
        at = now - (n - 1) * every - timedelta(minutes=rng.randint(0, 30))
        pull = (score < level - 8) - (score > level + 8)
        score = max(0, min(100, score + pull + rng.choice((-2, -1, 0, 0, 0, 1, 2))))
        shown = None if rng.random() < 0.01 and n > 1 else score
        rows.append(
            {
                "domain_id": domain.pk,
                "name": domain.name,
                "started_at": at - timedelta(seconds=3),
                "finished_at": at,
                "status": "complete" if shown is not None else "error",
                "score": shown,
                "grade": grade_of(shown),
                "categories": details(domain.name, score) if n == 1 else summary(shown),
                "queries": 40,
                "trigger": "schedule",
                "details_pruned": at < detail_cutoff,
            }
        )
    return rows


def store_orm(rows: list[dict]) -> None:
    CheckRun.objects.bulk_create([CheckRun(**row) for row in rows])


def store_raw(rows: list[dict]) -> None:
    """What bulk_create sends, without building a model instance and preparing each value
    through its field (which is most of bulk_create's time here)."""
    columns = list(rows[0])
    adapt = connection.ops.adapt_datetimefield_value
    encoded: dict[int, str] = {}

    def values(row: dict) -> tuple:
        row = dict(row, started_at=adapt(row["started_at"]), finished_at=adapt(row["finished_at"]))
        categories = row["categories"]  # summaries are shared dicts: encode each once
        if id(categories) not in encoded:
            encoded[id(categories)] = json.dumps(categories)
        row["categories"] = encoded[id(categories)]
        return tuple(row[c] for c in columns)

    table = connection.ops.quote_name(CheckRun._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: executemany manages ~10,000 rows/s
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(values(row))
            return
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608  (our own names)
            [values(row) for row in rows],
        )


def loader_name() -> str:
    return "COPY" if connection.vendor == "postgresql" else "executemany"


def build(domains: int, days: int, every_hours: int, now: datetime, loader) -> dict:
    started = time.perf_counter()
    team = Organization.objects.create(name="Bench")
    owner = get_user_model().objects.create_user("owner")  # logged in with force_login
    Membership.objects.create(organization=team, user=owner, role=Role.OWNER)
    names = [f"{'shop' if i % 3 == 0 else 'mail'}{i:05d}.example" for i in range(domains)]
    created = Domain.objects.bulk_create([Domain(organization=team, name=n) for n in names])
    runs_per_domain = days * 24 // every_hours
    rng = random.Random(7)  # noqa: S311  (plausible, repeatable histories)
    batch: list[dict] = []
    for domain in created:
        batch += history(domain, runs_per_domain, timedelta(hours=every_hours), now, rng)
        if len(batch) >= BATCH:
            with transaction.atomic():
                loader(batch)
            batch = []
    if batch:
        with transaction.atomic():
            loader(batch)
    runs_done = time.perf_counter()
    # Runs go in oldest first, so each domain's latest has its highest id.
    last_ids = CheckRun.objects.values("domain_id").annotate(last=Max("pk"))
    latest = {r.domain_id: r for r in CheckRun.objects.filter(pk__in=last_ids.values("last"))}
    total_runs = CheckRun.objects.count()

    findings, events = [], []
    for i, domain in enumerate(created):
        run = latest[domain.pk]
        for kind, severity, title in FINDINGS[i % 4 : i % 4 + 1 + i % 3]:
            findings.append(
                Finding(
                    run=run,
                    kind=kind,
                    category=kind.split(".")[0],
                    severity=severity,
                    title=title,
                    detail=f"{domain.name}: evidence",
                    remediation=f'`{domain.name}. TXT "v=example"`',
                )
            )
        events += [
            DomainEvent(
                domain=domain,
                run=run,
                created_at=now - timedelta(days=d * 7),
                kind=EventKind.RECORD_CHANGED,
                summary="SPF record changed",
            )
            for d in range(20)
        ]
        domain.last_run, domain.last_checked_at = run, run.finished_at
        domain.score, domain.grade = run.score, run.grade
    with transaction.atomic():
        Finding.objects.bulk_create(findings, batch_size=5000)
        DomainEvent.objects.bulk_create(events, batch_size=5000)
        Domain.objects.bulk_update(
            created, ["last_run", "last_checked_at", "score", "grade"], batch_size=500
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as a live database has them
    finished = time.perf_counter()
    return {
        "owner": owner,
        "domain": created[0],
        "runs": total_runs,
        "findings": len(findings),
        "events": len(events),
        "runs_seconds": runs_done - started,
        "seconds": finished - started,
    }


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    """(median ms, fastest ms, queries) of `repeat` renders, after one to warm up."""
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured)  # now: the next request empties the log it reads
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), queries


def explain_trend_lookup() -> str:
    sql = (
        "SELECT score FROM domains_checkrun WHERE domain_id = %s AND finished_at <= %s "
        "ORDER BY finished_at DESC LIMIT 1"
    )
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, [1, datetime.now(UTC) - timedelta(days=7)])
        return " / ".join(str(row[-1]) for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every", type=int, default=6, help="hours between runs")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument(
        "--orm", action="store_true", help="store the runs with bulk_create (slower)"
    )
    args = parser.parse_args()

    test_db = None
    if USE_SQLITE:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=OFF")  # a throwaway: no need to survive a crash
    else:
        # A name of its own, so that it never meets a test run's test_<name> database.
        connection.settings_dict["TEST"]["NAME"] = f"mailsec_bench_{os.getpid()}"
        test_db = connection.creation.create_test_db(verbosity=0, serialize=False)
    try:
        now = datetime.now(UTC)
        print(f"Database: {connection.vendor} ({connection.settings_dict['NAME']})")
        print(
            f"Building {args.domains} domains x {args.days * 24 // args.every} runs "
            f"(every {args.every} h for {args.days} days) ..."
        )
        loader = store_orm if args.orm else store_raw
        built = build(args.domains, args.days, args.every, now, loader)
        print(
            f"  {built['runs']:,} runs, {built['findings']:,} findings, "
            f"{built['events']:,} events in {built['seconds']:.0f} s "
            f"(runs: {built['runs_seconds']:.0f} s, "
            f"{built['runs'] / built['runs_seconds']:,.0f} rows/s with "
            f"{'bulk_create' if args.orm else loader_name()})"
        )
        if USE_SQLITE:
            size = Path(connection.settings_dict["NAME"]).stat().st_size
            print(f"  database file: {size / 2**20:,.0f} MiB")
        print(f"  the trend lookup's plan: {explain_trend_lookup()}")

        client = Client(HTTP_HOST="localhost")
        client.force_login(built["owner"])
        pages = [*PAGES, ("one domain's page", f"/domains/{built['domain'].pk}/")]
        print(f"\n{'page':<26} {'median ms':>10} {'fastest':>8} {'queries':>8}  url")
        # Pages render without a collectstatic manifest, as in the tests.
        storages = {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(STORAGES=storages):
            for label, url in pages:
                median, fastest, queries = measure(client, url, args.repeat)
                print(f"{label:<26} {median:>10.1f} {fastest:>8.1f} {queries:>8}  {url}")
    finally:
        if test_db:
            connection.creation.destroy_test_db(test_db, verbosity=0)
        connection.close()
        if args.keep:
            print(f"\nKept {WORKDIR}")
        else:
            shutil.rmtree(WORKDIR)


if __name__ == "__main__":
    main()
