"""The scale harness, one command (docs/scaling.md):

    .venv/bin/python -m bench.scale [--domains 10000] [--workers 1,2,4] [--mailboxes 50]
        [--reports 100] [--records 5] [--no-faults] [--workdir DIR] [--json out.json]

Starts PostgreSQL's database, a private Redis, knot behind the delaying forwarder, beat,
workers on their own queues and gunicorn, as separate processes; then one pass of "every
domain due at once" per check-worker count (throughput), and one pass with every fault,
report ingestion, a reader of the pages and a second beat. Prints the figures, and exits
non-zero when a domain was checked other than exactly once, or something was stuck, doubled
or lost. Nothing leaves 127.0.0.0/8 (the tests' network guard is installed here too).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.scale import observe
from bench.scale.run import Harness, Options
from tests import netguard


def verdict(result) -> list[str]:
    """What went wrong in a fault pass (empty: nothing)."""
    problems = []
    tally = result.tally
    if tally.lost or tally.doubled:
        problems.append(f"{tally.lost} domains lost, {tally.doubled} checked twice")
    if any(result.stuck.values()):
        problems.append(f"stuck: {result.stuck}")
    if any(v for k, v in result.queues.items()):
        problems.append(f"queues not drained: {result.queues}")
    if result.alerts["sent_twice"]:
        problems.append(f"{result.alerts['sent_twice']} alerts sent twice")
    reports = result.reports
    if reports and not (
        reports["reports"] == reports["distinct"] == reports["expected"]
        and reports["left_in_inbox"] == 0
    ):
        problems.append(f"reports: {reports}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4", help="check-worker counts to measure")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size per worker")
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--reports", type=int, default=100, help="per mailbox")
    parser.add_argument("--records", type=int, default=5, help="per report")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--no-throughput", action="store_true", help="only the pass with faults and ingestion"
    )
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds")
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        help="niceness of the workers, beat, knot and the forwarder (the web app runs at 0, "
        "as on a machine of its own); 0 puts everything on equal terms",
    )
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    netguard.install()
    counts = [int(n) for n in args.workers.split(",") if n]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mailsec-scale-"))
    options = Options(
        domains=args.domains,
        check_workers=counts[0],
        concurrency=args.concurrency,
        mailboxes=args.mailboxes,
        reports=args.reports,
        records=args.records,
        fault_every=args.fault_every,
        nice=args.nice,
    )
    harness = Harness(workdir, options)
    figures = {"options": asdict(options), "passes": []}
    problems = []
    try:
        harness.start()
        for count in [] if args.no_throughput else counts:
            result = harness.throughput_pass(count)
            figures["passes"].append(
                {
                    "workers": count,
                    "seconds": round(result.seconds, 1),
                    "checks_per_second": round(result.checks_per_second, 1),
                    "tally": asdict(result.tally),
                    "cpu_ms_per_check": result.cpu_ms_per_check,
                }
            )
            if not result.tally.exact:
                problems.append(f"{count} workers: {result.tally}")
        if not args.no_faults:
            harness.set_check_workers(max(2, counts[-1] if len(counts) == 1 else 2))
            result = harness.fault_pass()
            figures["faults"] = {
                "seconds": round(result.seconds, 1),
                "checks_per_second": round(result.checks_per_second, 1),
                "tally": asdict(result.tally),
                "events": result.events,
                "stuck": result.stuck,
                "queues": result.queues,
                "clock": result.clock,
                "web": result.web,
                "alerts": result.alerts,
                "reports": result.reports,
                "beats": result.beats,
                "restarts": result.restarts,
            }
            problems += verdict(result)
            if result.web.get("p95_ms", 0) > 200:
                problems.append(f"page p95 {result.web['p95_ms']} ms > 200 ms")
        figures["costs"] = observe.costs(harness.cluster.sql)
        r = harness.cluster.redis()
        figures["redis"] = {
            "used_memory": r.info("memory")["used_memory"],
            "keys": r.dbsize(),
            "task_results": sum(1 for _ in r.scan_iter("celery-task-meta-*", count=1000)),
        }
        if options.web:  # where each page's time goes, queries counted (bench/scale/pages.py)
            figures["pages"] = harness.cluster.profile_pages(harness.pages())
    finally:
        harness.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(figures, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
    sys.exit(main())
