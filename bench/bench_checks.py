"""Check-engine throughput, side by side with checkdmarc, on local zones only.

    .venv/bin/python bench/bench_checks.py [--domains 200] [--slow-domains 60] [--delay 0.025]

(a) `--domains` domains straight from a loopback knot; (b) `--slow-domains` domains through a
forwarder that holds every answer back `--delay` seconds, as a resolver across the internet
would. Both tools check the same zones: checkdmarc's `check_domains` (MX, SPF, DMARC, DNSSEC,
NS, SOA, MTA-STS and TLS-RPT records, BIMI; no DKIM, no TLS probes) and mailsec's engine (every
category, DKIM with its ~60 selectors included). Nothing leaves the machine: the test suite's
network guard is installed here too.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)

import django  # noqa: E402

django.setup()

import checkdmarc  # noqa: E402
import checkdmarc.dnssec  # noqa: E402
import checkdmarc.utils  # noqa: E402
import dns.nameserver  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.dns_forwarder import DnsForwarder  # noqa: E402
from domains.engine import DNS_CATEGORIES, check_domains  # noqa: E402
from tests import netguard  # noqa: E402
from tests.domains.dns_world import SOA, rsa_key, txt  # noqa: E402
from tests.knot import KnotServer  # noqa: E402

SELECTORS = ["selector1", "google", "s1", "k1", "default"]


def world(count: int) -> dict[str, str]:
    """`count` plausible domains under `test`, sharing mail hosts and an SPF include."""
    key = rsa_key(2048)
    lines = [SOA, "ns A 127.0.0.1\n", "_spf.provider A 127.0.0.5\n"]
    lines.append("_spf.provider TXT " + txt("v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"))
    for i in range(count):
        d = f"d{i:04d}.test."
        host = f"mx{i % 4}.mailhost.test."
        lines += [
            f"\n{d} MX 10 {host}",
            f"{d} MX 20 mx{(i + 1) % 4}.mailhost.test.",
            f"{d} TXT " + txt("v=spf1 mx include:_spf.provider.test ~all"),
            f"_dmarc.{d} TXT " + txt(f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{d[:-1]}"),
            f"{SELECTORS[i % len(SELECTORS)]}._domainkey.{d} TXT "
            + txt(f"v=DKIM1; k=rsa; p={key}"),
            f"_smtp._tls.{d} TXT " + txt(f"v=TLSRPTv1; rua=mailto:tls@{d[:-1]}"),
        ]
    mailhost = SOA + "".join(f"mx{i} A 127.0.1.{i}\nmx{i} AAAA ::1\n" for i in range(4))
    reverse = SOA + "".join(f"{i}.1.0 PTR mx{i}.mailhost.test.\n" for i in range(4))
    reverse6 = SOA + "1." + "0." * 31 + " PTR mx0.mailhost.test.\n"
    return {
        "test": "\n".join(lines) + "\n",
        "mailhost.test": mailhost,
        "127.in-addr.arpa": reverse,
        "ip6.arpa": reverse6.replace("1.0.", "1.0.", 1),
    }


def forget_checkdmarc_caches() -> None:
    for cache in (
        checkdmarc.utils.DNS_CACHE,
        checkdmarc.dnssec.DNSSEC_CACHE,
        checkdmarc.dnssec.DNSKEY_CACHE,
        checkdmarc.dnssec.TLSA_CACHE,
    ):
        cache.clear()


def run_checkdmarc(domains, host, port) -> float:
    forget_checkdmarc_caches()
    nameservers = [dns.nameserver.Do53Nameserver(host, port)]
    start = time.perf_counter()
    checkdmarc.check_domains(domains, nameservers=nameservers, timeout=3.0)
    return time.perf_counter() - start


def run_mailsec(domains, host, port, processes) -> tuple[float, int, list]:
    start = time.perf_counter()
    # The DNS checks only (as checkdmarc's): the protocol probes have a benchmark of their own.
    results = check_domains(
        domains, nameservers=[(host, port)], processes=processes, categories=DNS_CATEGORIES
    )
    return time.perf_counter() - start, sum(r.queries for r in results), results


def compare(label, domains, host, port, processes, repeats) -> dict:
    """Each tool `repeats` times, alternating; the medians."""
    ours, theirs, queries, errors = [], [], 0, 0
    for _ in range(repeats):
        theirs.append(run_checkdmarc(domains, host, port))
        seconds, queries, results = run_mailsec(domains, host, port, processes)
        ours.append(seconds)
        errors = max(errors, sum(r.status != "complete" for r in results))
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    row = {
        "case": label,
        "domains": len(domains),
        "mailsec_per_s": len(domains) / ours_s,
        "checkdmarc_per_s": len(domains) / theirs_s,
        "speedup": theirs_s / ours_s,
        "queries_per_domain": queries / len(domains),
    }
    print(
        f"{label}: {len(domains)} domains, median of {repeats}: mailsec {ours_s:.2f} s "
        f"({row['mailsec_per_s']:.1f}/s, {processes} process(es), "
        f"{row['queries_per_domain']:.0f} lookups/domain, {errors} incomplete), "
        f"checkdmarc {theirs_s:.2f} s ({row['checkdmarc_per_s']:.1f}/s): "
        f"{row['speedup']:.1f}x; first mailsec run {ours[0]:.2f} s (starts the worker processes)",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--slow-domains", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.025)
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    netguard.install()
    with tempfile.TemporaryDirectory() as workdir:
        knot = KnotServer(
            Path(workdir), world(max(args.domains, args.slow_domains)), signed=["test"]
        )
        knot.start()
        # Here and, through the environment, in the engine's worker processes.
        settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
        os.environ["MAILSEC_DNSSEC_TRUST_ANCHORS"] = ",".join(knot.trust_anchors)
        try:
            domains = [f"d{i:04d}.test" for i in range(args.domains)]
            compare(
                "(a) loopback knot", domains, knot.host, knot.port, args.processes, args.repeats
            )
            with DnsForwarder((knot.host, knot.port), delay=args.delay) as slow:
                slow_domains = [f"d{i:04d}.test" for i in range(args.slow_domains)]
                label = f"(b) {args.delay * 1000:.0f} ms forwarder"
                compare(label, slow_domains, slow.host, slow.port, args.processes, args.repeats)
        finally:
            knot.stop()


if __name__ == "__main__":
    main()
