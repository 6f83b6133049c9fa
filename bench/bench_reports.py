"""Aggregate report ingestion against parsedmarc, on one generated report per size.

    .venv/bin/python bench/bench_reports.py [--records 50000 1000000] [--repeat 3]
                                            [--databases sqlite postgres] [--parsedmarc-repeat 1]

Runs are interleaved (parsedmarc, then mailsec on each database, round after round), so
that both tools meet the same drift in this machine's speed; medians are compared.

For each size, one aggregate report is generated as a plain XML file (a realistic mix: 1 to 3
DKIM and 1 or 2 SPF results per record, a third of the sources repeating, dispositions and
override reasons spread as real reports show them). Then, each in a fresh process so that its
peak memory is its own:

- **mailsec**: `reports.ingest.ingest_input(path)` into a freshly migrated database (a throwaway
  SQLite file, or a throwaway PostgreSQL database on the server of POSTGRES_URL, default
  postgres://root@127.0.0.1/postgres): unpack, parse, validate, store every record, the raw
  input, the daily rollups and the DKIM selectors; the time excludes the migration.
- **parsedmarc**: `parsedmarc.parse_report_file(path, offline=True)` (parse only, nothing
  stored).

Printed: seconds, records per second and peak RSS of each process (ru_maxrss), as a table, and
the ratio of records per second. Nothing leaves the machine: the test suite's network guard is
installed in every process.
"""

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BEGIN = 1_700_000_000
DOMAIN = "bench.example"


def generate(path: Path, records: int, seed: int = 7) -> None:
    """An aggregate report with `records` records, written as a stream. Plain XML: parsedmarc
    refuses to decompress more than 100 MB, and the 1,000,000-record report is 640 MB."""
    rng = random.Random(seed)  # noqa: S311  (test data, repeatable)
    selectors = ["google", "selector1", "selector2", "s1", "k1", "mandrill"]
    senders = [f"mail{i}.{DOMAIN}" for i in range(5)] + ["esp.example.net", "bulk.example.org"]
    with open(path, "w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n<version>1.0</version>\n'
            "<report_metadata><org_name>bench.example.net</org_name>"
            "<email>noreply-dmarc@bench.example.net</email>"
            f"<report_id>bench-{records}</report_id><date_range><begin>{BEGIN}</begin>"
            f"<end>{BEGIN + 86399}</end></date_range></report_metadata>\n"
            f"<policy_published><domain>{DOMAIN}</domain><adkim>r</adkim><aspf>r</aspf>"
            "<p>quarantine</p><sp>quarantine</sp><pct>100</pct><fo>1</fo></policy_published>\n"
        )
        chunk = []
        for n in range(records):
            chunk.append(_record(rng, n, selectors, senders))
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
        out.write("</feedback>\n")


def _record(rng: random.Random, n: int, selectors: list[str], senders: list[str]) -> str:
    # A third of the records reuse an earlier source, as busy senders do.
    k = rng.randrange(max(n, 1)) if rng.random() < 0.33 else n
    ip = f"{10 + k // 16_000_000 % 200}.{k // 65536 % 256}.{k // 256 % 256}.{k % 256}"
    if rng.random() < 0.05:
        ip = f"2001:db8:{k // 65536 % 65536:x}::{k % 65536:x}"
    aligned = rng.random() < 0.8
    dkim = "pass" if aligned else "fail"
    spf = "pass" if aligned and rng.random() < 0.9 else "fail"
    disposition = "none" if aligned else rng.choice(["none", "quarantine", "reject"])
    reason = ""
    if not aligned and rng.random() < 0.1:
        reason = "<reason><type>forwarded</type><comment></comment></reason>"
    sender = rng.choice(senders)
    dkims = "".join(
        f"<dkim><domain>{DOMAIN if aligned else sender}</domain>"
        f"<selector>{rng.choice(selectors)}</selector><result>{dkim}</result></dkim>"
        for _ in range(rng.randint(1, 3))
    )
    spfs = "".join(
        f"<spf><domain>{sender}</domain><scope>mfrom</scope><result>{spf}</result></spf>"
        for _ in range(rng.randint(1, 2))
    )
    return (
        f"<record><row><source_ip>{ip}</source_ip><count>{rng.randint(1, 50)}</count>"
        f"<policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim>"
        f"<spf>{spf}</spf>{reason}</policy_evaluated></row>"
        f"<identifiers><header_from>{DOMAIN}</header_from>"
        f"<envelope_from>{sender}</envelope_from></identifiers>"
        f"<auth_results>{dkims}{spfs}</auth_results></record>\n"
    )


# --- the measured processes ------------------------------------------------------------


def run_mailsec(path: str, database: str, workdir: str) -> dict:
    """In a child process: migrate a fresh database, then time one ingest_input()."""
    os.environ["MAILSEC_VAR_DIR"] = workdir
    os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)
    os.environ["MAILSEC_REPORT_MAX_MB"] = "4096"  # the 1M-record report is ~0.5 GB of XML
    os.environ["DJANGO_SETTINGS_MODULE"] = "mailsec.settings"
    if database == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    else:
        os.environ["DATABASE_URL"] = os.environ.get(
            "POSTGRES_URL", "postgres://root@127.0.0.1/postgres"
        )
    sys.path.insert(0, str(ROOT))
    from tests import netguard

    netguard.install()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    test_db = None
    if database == "sqlite":
        call_command("migrate", verbosity=0)
    else:
        connection.settings_dict["TEST"]["NAME"] = f"mailsec_bench_{os.getpid()}"
        test_db = connection.creation.create_test_db(verbosity=0, serialize=False)
    try:
        from reports.ingest import ingest_input
        from reports.models import AggregateRecord, DailyRollup

        started = time.perf_counter()
        [outcome] = ingest_input(path, path, via="command")
        seconds = time.perf_counter() - started
        if outcome.status != "imported":
            raise SystemExit(f"not imported: {outcome}")
        stored = AggregateRecord.objects.count()
        rollups = DailyRollup.objects.count()
    finally:
        if test_db:
            connection.creation.destroy_test_db(test_db, verbosity=0)
    return {
        "seconds": seconds,
        "records": stored,
        "rollups": rollups,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_parsedmarc(path: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests import netguard

    netguard.install()
    import parsedmarc

    started = time.perf_counter()
    parsed = parsedmarc.parse_report_file(path, offline=True)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": len(parsed["report"]["records"]),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(*args: str) -> dict:
    out = subprocess.run(  # noqa: S603  (this very script)
        [PYTHON, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the driver ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=3, help="mailsec runs per case")
    parser.add_argument("--parsedmarc-repeat", type=int, default=1, help="parsedmarc runs per case")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, *rest = args.child
        result = run_mailsec(*rest) if what == "mailsec" else run_parsedmarc(*rest)
        print(json.dumps(result))
        return

    workdir = Path(tempfile.mkdtemp(prefix="mailsec-bench-reports-"))
    try:
        rows = []
        for records in args.records:
            path = workdir / f"bench-{records}.xml"
            started = time.perf_counter()
            generate(path, records)
            print(
                f"generated {records:,} records: {path.stat().st_size / 2**20:.0f} MiB of XML "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            rows += measure(str(path), records, args, workdir)
        print_table(rows)
    finally:
        shutil.rmtree(workdir)


def measure(path: str, records: int, args, workdir: Path) -> list[dict]:
    """Rounds of parsedmarc, then mailsec on each database, one after the other: this machine's
    speed drifts by a third over minutes, and interleaving puts both tools in the same drift."""
    pd_runs: list[dict] = []
    our_runs: dict[str, list[dict]] = {database: [] for database in args.databases}
    for round_ in range(max(args.repeat, args.parsedmarc_repeat)):
        if round_ < args.parsedmarc_repeat:
            pd_runs.append(child("parsedmarc", path))
            print(f"  parsedmarc: {pd_runs[-1]['seconds']:.1f} s", flush=True)
        if round_ < args.repeat:
            for database in args.databases:
                run_dir = workdir / f"{database}-{records}-{round_}"
                run_dir.mkdir()
                run = child("mailsec", path, database, str(run_dir))
                our_runs[database].append(run)
                shutil.rmtree(run_dir)
                print(f"  mailsec {database}: {run['seconds']:.1f} s", flush=True)
    pd = _median(pd_runs)
    if pd["records"] != records:
        raise SystemExit(f"parsedmarc found {pd['records']} records, not {records}")
    rows = [{"tool": "parsedmarc (parse only)", "records": records, **pd}]
    for database, runs in our_runs.items():
        ours = _median(runs)
        if ours["records"] != records:
            raise SystemExit(f"mailsec stored {ours['records']} records, not {records}")
        ours["ratio"] = pd["seconds"] / ours["seconds"]
        rows.append({"tool": f"mailsec ({database}, parse+store)", "records": records, **ours})
    return rows


def _median(runs: list[dict]) -> dict:
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**middle, "seconds": statistics.median(r["seconds"] for r in runs)}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'records':>10}  {'tool':<34} {'seconds':>8} {'records/s':>10} {'peak MB':>8}  ratio")
    for row in rows:
        ratio = f"{row['ratio']:.1f}x" if "ratio" in row else ""
        print(
            f"{row['records']:>10,}  {row['tool']:<34} {row['seconds']:>8.1f} "
            f"{row['records'] / row['seconds']:>10,.0f} {row['peak_mb']:>8.0f}  {ratio}"
        )


if __name__ == "__main__":
    main()
