"""CPU to refuse pathological report inputs (issue 13): each is small compressed and costs the
parsers millions of steps unless an input's budget stops them.

    .venv/bin/python bench/bench_refusals.py [--repeat 3]

Each input is built in memory, gzip-compressed, and handed to what ingestion runs on an input
(reports.parsing.unpack.payloads, then parse() on each payload); printed per input: its size
compressed and unpacked, the CPU seconds to refuse it (median of the repeats), and the reason.
No database, nothing stored.
"""

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)

import django  # noqa: E402

django.setup()

from reports.parsing import parse, types, unpack  # noqa: E402

LIMIT = 100 * 2**20
INPUTS = {
    # The case: elements by the million in <feedback>, none of them a record.
    "<x/> x 20M in <feedback>": b"<feedback>" + b"<x/>" * 20_000_000 + b"</feedback>",
    "MIME parts x 3M in one message": b"Content-Type: multipart/mixed; boundary=b\n\n"
    + b"--b\n\nx\n" * 3_000_000
    + b"--b--\n",
    "mbox of 1M empty messages": b"From a@b Sat Jan  3 01:05:34 1996\n\nx\n\n" * 1_000_000,
}


def refuse(data: bytes) -> list[str]:
    reasons = []
    for item in unpack.payloads(data, "input.gz", limit=LIMIT):
        if isinstance(item, types.Refused):
            reasons.append(item.reason)
            continue
        try:
            parse(item)
            reasons.append("parsed")
        except types.Refused as refused:
            reasons.append(refused.reason)
    return reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| input | gzip | unpacked | CPU to refuse | reason |")
    print("|---|---:|---:|---:|---|")
    for name, body in INPUTS.items():
        data = gzip.compress(body, 6)
        times = []
        for _ in range(args.repeat):
            started = time.process_time()
            reasons = refuse(data)
            times.append(time.process_time() - started)
        last = reasons[-1] if reasons else ""
        shown = f"{last} ({len(reasons)} outcomes)" if len(reasons) > 1 else last
        print(
            f"| {name} | {len(data) / 1024:.0f} kB | {len(body) / 2**20:.0f} MB "
            f"| {statistics.median(times):.2f} s | {shown} |"
        )


if __name__ == "__main__":
    main()
