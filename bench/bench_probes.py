"""Protocol probes at scale: 200 domains whose MX and SRV hosts are 20 local servers, 2 of them
tarpits. As root (port 25):

    .venv/bin/python bench/bench_probes.py [--domains 200] [--timeout 2] [--rounds 3]

The 20 servers are 20 loopback addresses (127.0.60.1-20). 18 answer on ports 25, 587, 465, 143,
993, 110 and 995 through a counting proxy in front of the mail lab's real Postfix and dovecot
(tests/mailservers.py); 2 (127.0.60.19-20) are tarpits on port 25 that accept and never greet.
Each domain has one MX among the 20 and SRV records (RFC 6186/8314) for the six access services
on the 18 others, in a loopback knot zone. Every domain resolves its own targets through DNS and
asks one shared Prober for them, 50 domains at a time, as the check engine does.

Measured on the server side: connections per (address, port) (compared with the `connections`
of the one probe the Prober made for it: equal means one probe), the most connections open at
once per address (counted from the kernel's state of each accepted connection), and what the
tarpits accepted. Timed: the whole run, and the same run without the tarpit hosts ("the rest");
the bound asked for is whole < 2 x timeout + rest. Nothing leaves the machine (netguard).
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")
os.environ.setdefault("MAILSEC_SECRET_KEY", "benchmark-only-" * 4)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from domains import net  # noqa: E402
from domains.dns import DnsSession  # noqa: E402
from domains.probes.probe import Timeouts  # noqa: E402
from domains.probes.results import Reach, Service, Target, TlsMode  # noqa: E402
from domains.probes.runner import Prober  # noqa: E402
from tests import netguard  # noqa: E402
from tests.knot import KnotServer  # noqa: E402
from tests.mailservers import MailLab  # noqa: E402
from tests.silent_servers import Tarpit, still_open  # noqa: E402

SERVERS, TARPITS = 20, 2
SOA = "@ SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300\n@ NS ns.bench.test.\n"
# SRV name, service, TLS mode, port, the lab endpoint that serves it
ACCESS = [
    ("_submission._tcp", Service.SUBMISSION, TlsMode.STARTTLS, 587, "good-submission"),
    ("_submissions._tcp", Service.SUBMISSION, TlsMode.IMPLICIT, 465, "good-submissions"),
    ("_imap._tcp", Service.IMAP, TlsMode.STARTTLS, 143, "imap-secure"),
    ("_imaps._tcp", Service.IMAP, TlsMode.IMPLICIT, 993, "imaps-secure"),
    ("_pop3._tcp", Service.POP3, TlsMode.STARTTLS, 110, "pop3-secure"),
    ("_pop3s._tcp", Service.POP3, TlsMode.IMPLICIT, 995, "pop3s-secure"),
]


def address(n: int) -> str:
    return f"127.0.60.{n}"


def host(n: int) -> str:
    return f"h{n:02d}.bench.test"


def zone(domains: int) -> str:
    lines = [SOA, "ns A 127.0.0.1\n"]
    lines += [f"{host(n)}. A {address(n)}\n" for n in range(1, SERVERS + 1)]
    for i in range(domains):
        d = f"d{i:03d}.bench.test."
        lines.append(f"{d} MX 10 {host(i % SERVERS + 1)}.\n")
        for k, (srv, _, _, port, _) in enumerate(ACCESS):
            server = (i + k) % (SERVERS - TARPITS) + 1
            lines.append(f"{srv}.{d} SRV 0 1 {port} {host(server)}.\n")
    return "".join(lines)


def targets_of(domain: str, session: DnsSession) -> list[Target]:
    """MX hosts on 25, SRV targets on their ports: what the check engine resolves."""
    found = []
    for mx in session.lookup(domain, "MX").rdatas:
        name = str(mx.exchange).rstrip(".")
        for a in net.addresses_of(session, name):
            found.append(Target(name, a, 25, Service.SMTP, TlsMode.STARTTLS))
    for srv, service, mode, _, _ in ACCESS:
        for record in session.lookup(f"{srv}.{domain}", "SRV").rdatas:
            name = str(record.target).rstrip(".")
            for a in net.addresses_of(session, name):
                found.append(Target(name, a, record.port, service, mode))
    return found


class CountingProxy:
    """Listens on (address, port) pairs and relays each connection to a real server, counting
    connections per (address, port) and the most open at once per address."""

    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]]):
        self.routes = routes
        self.connections: dict[tuple[str, int], int] = defaultdict(int)
        self.most_open: dict[str, int] = defaultdict(int)
        self._held: dict[str, set] = defaultdict(set)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._listen())
        self._ready.set()
        self.loop.run_forever()

    async def _listen(self) -> None:
        for front in self.routes:
            handler = self._handler(front)
            await asyncio.start_server(handler, front[0], front[1], backlog=128)

    def _handler(self, front):
        async def handle(reader, writer):
            sock = writer.get_extra_info("socket")
            held = self._held[front[0]]
            self.connections[front] += 1
            held.add(sock)
            self.most_open[front[0]] = max(
                self.most_open[front[0]], sum(still_open(s) for s in held)
            )
            try:
                back_reader, back_writer = await asyncio.open_connection(*self.routes[front])
                pumps = [
                    asyncio.create_task(_pump(reader, back_writer)),
                    asyncio.create_task(_pump(back_reader, writer)),
                ]
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                for pump in pumps:
                    pump.cancel()
                back_writer.close()
            except OSError:
                pass
            finally:
                held.discard(sock)
                writer.close()

        return handle

    def reset(self) -> None:
        self.connections.clear()
        self.most_open.clear()


async def _pump(reader, writer) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def run(domains: list[str], nameserver, timeouts: Timeouts, skip: set[str]) -> tuple:
    """One batch: every domain resolves its targets and asks the shared Prober for them."""
    results = {}
    lock = threading.Lock()
    with Prober(timeouts=timeouts) as prober:

        def check(domain: str) -> None:
            session = DnsSession([nameserver])
            targets = [t for t in targets_of(domain, session) if t.address not in skip]
            found = prober.probe_many(targets, session)
            with lock:
                results.update(found)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(check, domains))
        elapsed = time.monotonic() - started
    return elapsed, results, prober.probed


def check_politeness(proxy: CountingProxy, tarpits: list[Tarpit], results: dict) -> list[str]:
    """What the servers saw, against the one probe per (address, port) the Prober made."""
    problems = []
    made = defaultdict(int)
    for key, result in results.items():
        made[(key[0], key[1])] += result.connections
    for front, count in proxy.connections.items():
        if count != made[front]:
            problems.append(f"{front}: {count} connections, one probe makes {made[front]}")
    for a, most in proxy.most_open.items():
        if most > 2:
            problems.append(f"{a}: {most} connections open at once")
    for tarpit in tarpits:
        if tarpit.connections != 1 or tarpit.most_open > 1:
            problems.append(f"tarpit {tarpit.address}: {tarpit.connections} connections")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=2.0, help="greeting/connect timeout")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    netguard.install()
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = True
    timeouts = Timeouts(connect=args.timeout, greeting=args.timeout, command=args.timeout * 2)
    workdir = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    lab = MailLab(workdir / "lab")
    lab.start()
    knot = KnotServer(workdir / "knot", {"bench.test": zone(args.domains)})
    knot.start()
    try:
        settings.MAILSEC_TLS_CA_FILE = str(lab.ca_bundle)
        routes = {}
        for n in range(1, SERVERS - TARPITS + 1):
            good = lab.endpoints["good"]
            routes[(address(n), 25)] = (good.address, good.port)
            for _, _, _, port, endpoint in ACCESS:
                e = lab.endpoints[endpoint]
                routes[(address(n), port)] = (e.address, e.port)
        proxy = CountingProxy(routes)
        tarpit_addresses = [address(n) for n in range(SERVERS - TARPITS + 1, SERVERS + 1)]
        domains = [f"d{i:03d}.bench.test" for i in range(args.domains)]
        nameserver = (knot.host, knot.port)
        report(domains, nameserver, timeouts, proxy, tarpit_addresses, args)
    finally:
        knot.stop()
        lab.stop()


def report(domains, nameserver, timeouts, proxy, tarpit_addresses, args) -> None:
    whole, rest, problems = [], [], []
    for _ in range(args.rounds):
        proxy.reset()
        tarpits = [Tarpit(a) for a in tarpit_addresses]
        try:
            elapsed, results, probed = run(domains, nameserver, timeouts, set())
        finally:
            for tarpit in tarpits:
                tarpit.stop()
        whole.append(elapsed)
        problems += check_politeness(proxy, tarpits, results)
        silent = sum(r.reach is Reach.NO_GREETING for r in results.values())
        sequential = sum(r.duration_ms for r in results.values()) / 1000
        connections = sum(proxy.connections.values()) + sum(t.connections for t in tarpits)
        most = max(proxy.most_open.values())
        proxy.reset()
        rest.append(run(domains, nameserver, timeouts, set(tarpit_addresses))[0])
        print(
            f"whole run {elapsed:.2f} s ({probed} probes, {silent} tarpits, {connections} "
            f"connections, at most {most} open to one address; the probes' durations add up to "
            f"{sequential:.1f} s); without the tarpits {rest[-1]:.2f} s"
        )
    bound = 2 * args.timeout + statistics.median(rest)
    print(
        f"\n{len(domains)} domains, {SERVERS} servers ({TARPITS} tarpits), timeout "
        f"{args.timeout:g} s: median whole run {statistics.median(whole):.2f} s, median without "
        f"tarpits {statistics.median(rest):.2f} s; bound 2 x timeout + rest = {bound:.2f} s: "
        f"{'met' if max(whole) < bound else 'NOT met'}"
    )
    print("politeness:", "; ".join(problems) if problems else "one probe per address and port")


if __name__ == "__main__":
    main()
