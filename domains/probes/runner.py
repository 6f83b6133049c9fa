"""The Prober: probes shared by every domain of a batch, polite to each host, fast over many.

    from domains.probes.runner import Prober
    from domains.probes.results import Target, Service, TlsMode

    prober = Prober()                                   # one per batch (a run of many domains)
    targets = [Target("mx.example.com", "192.0.2.1", 25, Service.SMTP, TlsMode.STARTTLS), ...]
    results = prober.probe_many(targets, session)       # {target.key: ProbeResult}
    ...                                                  # from any number of threads at once
    prober.close()                                       # or: with Prober() as prober: ...

Guarantees, for the Prober's lifetime:
- One probe per `Target.key` (address, port, service, TLS mode, host name): a second request for
  a key gets the first one's result, waiting for it if it is still running. So a host shared by
  thousands of domains is probed once, and a tarpit costs one timeout, not one per domain.
- At most `per_address` (2) connections at once to one address, whatever the ports: a probe
  holds one of the address's slots for its whole length and opens one connection at a time.
- Probes of different addresses run side by side (`workers` threads), so a run over many domains
  takes about as long as its slowest host, not the sum of all.
- `probe_many` returns once all its targets are done; it never raises for a host's failure
  (that is in the ProbeResult's `reach` / `error`).

Reuse across runs (within a probe interval) is the caller's: pass `cache`, any object with
`get(key) -> ProbeResult | None` and `put(result: ProbeResult) -> None`. `get` is asked once per
key before probing (a hit is returned as it is: its `probed_at` tells its age); `put` gets every
fresh result. Both are called from worker threads, so a cache must not touch the database there
(each thread would keep a Django connection open after the run): domains/probing.py reads the
stored probes before and writes the new ones after, in the caller's thread, and hands the Prober
a cache in memory (tests/domains/test_probe_connections.py counts the connections). A cache that
raises is not trusted for that key: the host is probed.

Options: `timeouts` (domains.probes.probe.Timeouts: connect, greeting, command seconds),
`per_address` (2), `workers` (32). `probe_one(target, session)` is probe_many for one target;
`probed` counts the probes actually run (not shared, not from the cache).

`session` is the DnsSession of the caller: it is used for the PTR / forward-confirmation lookups
of SMTP probes (the first caller's session, since the probe is shared). None skips them.
"""

import contextlib
import threading
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor

from domains.dns import DnsSession
from domains.probes.probe import Timeouts, probe
from domains.probes.results import ProbeResult, Target

PER_ADDRESS = 2  # the most connections mailsec has open to one address at once
WORKERS = 32  # probes in flight across addresses (threads that mostly wait for the network)


class Prober:
    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        per_address: int = PER_ADDRESS,
        workers: int = WORKERS,
        cache=None,
    ):
        self.timeouts = timeouts or Timeouts()
        self.cache = cache
        self.per_address = per_address
        self._lock = threading.Lock()
        self._futures: dict[tuple, Future] = {}
        # Per address: how many probes run, and those waiting for one of its slots. Waiting
        # probes hold no thread, so a slow address never starves the others of workers.
        self._active: dict[str, int] = defaultdict(int)
        self._waiting: dict[str, deque] = defaultdict(deque)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self.probed = 0  # probes actually run (not cache hits, not shared)

    def probe_many(
        self, targets: list[Target], session: DnsSession | None = None
    ) -> dict[tuple, ProbeResult]:
        futures = {target.key: self._submit(target, session) for target in targets}
        return {key: future.result() for key, future in futures.items()}

    def probe_one(self, target: Target, session: DnsSession | None = None) -> ProbeResult:
        return self._submit(target, session).result()

    def _submit(self, target: Target, session: DnsSession | None) -> Future:
        with self._lock:
            future = self._futures.get(target.key)
            if future is not None:
                return future
            future = self._futures[target.key] = Future()
            job = (target, session, future)
            if self._active[target.address] < self.per_address:
                self._active[target.address] += 1
            else:
                self._waiting[target.address].append(job)
                return future
        self._pool.submit(self._run, *job)
        return future

    def _run(self, target: Target, session: DnsSession | None, future: Future) -> None:
        try:
            future.set_result(self._result(target, session))
        except BaseException as exc:  # a bug in a probe must not hang every caller
            future.set_exception(exc)
        finally:
            with self._lock:
                waiting = self._waiting[target.address]
                following = waiting.popleft() if waiting else None
                if following is None:
                    self._active[target.address] -= 1
            if following is not None:
                try:
                    self._pool.submit(self._run, *following)
                except RuntimeError:  # closed meanwhile: the waiting caller must not hang
                    following[2].set_exception(RuntimeError("the Prober was closed"))

    def _result(self, target: Target, session: DnsSession | None) -> ProbeResult:
        cached = self._cached(target)
        if cached is not None:
            return cached
        result = probe(target, session, self.timeouts)
        with self._lock:
            self.probed += 1
        if self.cache is not None:
            with contextlib.suppress(Exception):  # a cache that fails loses a result, not the run
                self.cache.put(result)
        return result

    def _cached(self, target: Target) -> ProbeResult | None:
        if self.cache is None:
            return None
        try:
            return self.cache.get(target.key)
        except Exception:  # see the module docstring: then the host is probed
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
