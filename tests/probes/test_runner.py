"""The Prober against the lab: probes shared by key, at most two connections to an address,
tarpits costing one timeout, addresses probed side by side, and the cache hook. Connection
counts are the servers' own (the tarpit counts what it accepts)."""

import threading
import time

import pytest

from domains.probes.probe import Timeouts
from domains.probes.results import Reach
from domains.probes.runner import Prober

TIMEOUT = 1.0
FAST = Timeouts(connect=TIMEOUT, greeting=TIMEOUT, command=5)


@pytest.fixture
def prober(lab_trust):
    with Prober(timeouts=FAST) as prober:
        yield prober


def test_one_probe_per_key_however_many_callers(prober, mail_lab, lab_dns):
    tarpit = mail_lab.endpoints["tarpit"].target()
    before = mail_lab.tarpit.connections
    results, started = [], time.monotonic()

    def caller():
        results.append(prober.probe_many([tarpit, tarpit], lab_dns)[tarpit.key])

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(results) == 20 and all(r is results[0] for r in results)
    assert results[0].reach is Reach.NO_GREETING
    assert mail_lab.tarpit.connections == before + 1  # as the tarpit counted them
    assert prober.probed == 1
    assert elapsed < 2 * TIMEOUT  # one timeout, not one per caller


def test_at_most_two_connections_to_one_address(prober, mail_lab):
    """Five names on the tarpit's address and port (five keys): they take turns, two at once."""
    targets = [mail_lab.endpoints["tarpit"].target(f"t{i}.probes.test") for i in range(5)]
    _wait_until_idle(mail_lab.tarpit)
    before, started = mail_lab.tarpit.connections, time.monotonic()
    mail_lab.tarpit.most_open = 0
    results = prober.probe_many(targets)
    elapsed = time.monotonic() - started
    assert mail_lab.tarpit.connections == before + 5
    assert mail_lab.tarpit.most_open == 2
    assert all(r.reach is Reach.NO_GREETING for r in results.values())
    assert 3 * TIMEOUT <= elapsed < 4 * TIMEOUT  # three rounds: 2 + 2 + 1


def _wait_until_idle(tarpit) -> None:
    """Earlier tests' connections are closed, but the tarpit notices within 0.2 s."""
    deadline = time.monotonic() + 2
    while tarpit.open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tarpit.open == 0


def test_addresses_are_probed_side_by_side(prober, mail_lab, lab_dns):
    """Two silent hosts and the lab's real servers: about one timeout in all, not the sum."""
    names = [
        "tarpit",
        "blackhole",
        "refused",
        "good",
        "plain",
        "relay",
        "imap-secure",
        "pop3s-plain",
    ]
    targets = [mail_lab.endpoints[name].target() for name in names]
    started = time.monotonic()
    results = prober.probe_many(targets, lab_dns)
    elapsed = time.monotonic() - started
    assert [results[t.key].reach for t in targets] == [
        Reach.NO_GREETING,
        Reach.TIMEOUT,
        Reach.REFUSED,
        *[Reach.OK] * 5,
    ]
    assert elapsed < 2 * TIMEOUT


class DictCache:
    def __init__(self):
        self.stored, self.asked = {}, []

    def get(self, key):
        self.asked.append(key)
        return self.stored.get(key)

    def put(self, result):
        self.stored[result.target.key] = result


def test_cache_hook_reuses_results_across_probers(lab_trust, mail_lab):
    cache = DictCache()
    tarpit = mail_lab.endpoints["tarpit"].target()
    with Prober(timeouts=FAST, cache=cache) as first:
        fresh = first.probe_one(tarpit)
    assert cache.stored == {tarpit.key: fresh}
    before = mail_lab.tarpit.connections
    with Prober(timeouts=FAST, cache=cache) as second:
        started = time.monotonic()
        again = second.probe_one(tarpit)
        assert time.monotonic() - started < 0.5
    assert again is fresh and second.probed == 0
    assert mail_lab.tarpit.connections == before


def test_a_failing_cache_means_probing(lab_trust, mail_lab):
    class Broken:
        def get(self, key):
            raise RuntimeError("database gone")

        def put(self, result):
            raise RuntimeError("database gone")

    with Prober(timeouts=FAST, cache=Broken()) as prober:
        result = prober.probe_one(mail_lab.endpoints["good"].target())
    assert result.reach is Reach.OK and prober.probed == 1


def test_closing_fails_waiting_probes_instead_of_hanging(lab_trust, mail_lab):
    prober = Prober(timeouts=FAST, per_address=1)
    targets = [mail_lab.endpoints["tarpit"].target(f"c{i}.probes.test") for i in range(2)]
    outcome = []

    def caller():
        try:
            outcome.append(prober.probe_many(targets))
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    time.sleep(0.2)  # the first probe runs, the second waits for the address's one slot
    prober.close()  # waits for the running probe (one timeout)
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RuntimeError) and str(outcome[0]) == "the Prober was closed"
