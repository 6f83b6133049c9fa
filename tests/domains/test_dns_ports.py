"""DNS queries leave from random source ports that change from query to query (a small pool of
sockets, each replaced after a few dozen queries), so that an off-path attacker must guess the
port as well as the 16-bit id; an answer counts only on a port its query left from."""

import socket
import threading
from collections.abc import Callable

import dns.message
import dns.rrset
import pytest

from domains import dns as mdns
from domains.dns import DnsSession, LookupFailed


class RecordingServer:
    """A tiny DNS server on loopback that answers every A query with 192.0.2.1 and records the
    source port of each query. `before_answer(query, source, sock)` may send something first."""

    def __init__(self, before_answer: Callable | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.ports: list[int] = []
        self.first_port: dict[str, int] = {}  # each name's first query (a retry may follow)
        self.before_answer = before_answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            self.ports.append(source[1])
            self.first_port.setdefault(query.question[0].name.to_text(), source[1])
            if self.before_answer:
                self.before_answer(query, source, self.sock)
            self.sock.sendto(answer(query, "192.0.2.1").to_wire(), source)


def answer(query, address: str):
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", address))
    return response


def addresses(session: DnsSession, name: str) -> list[str]:
    return [r.address for r in session.lookup(name, "A").rdatas]


def test_two_queries_leave_from_different_ports():
    with RecordingServer() as server:
        session = DnsSession([("127.0.0.1", server.port)])
        assert addresses(session, "one.test") == ["192.0.2.1"]
        assert addresses(session, "two.test") == ["192.0.2.1"]
    assert server.first_port["one.test."] != server.first_port["two.test."]


def test_many_queries_spread_over_many_ports_with_few_sockets(monkeypatch):
    # A fresh transport, so the count of its sockets is its own.
    monkeypatch.setattr(mdns, "_transport", None)
    total = 400
    with RecordingServer() as server:
        session = DnsSession([("127.0.0.1", server.port)])
        names = [f"n{i}.test" for i in range(total)]
        session.prefetch(*[(name, "A") for name in names])
        assert all(addresses(session, name) == ["192.0.2.1"] for name in names)
    assert len(server.first_port) == total  # (retries, on a loaded machine, come on top)
    # No port carried more than its share; no query had a socket of its own.
    busiest = max(server.ports.count(port) for port in set(server.ports))
    assert busiest <= mdns.QUERIES_PER_PORT
    assert total / mdns.QUERIES_PER_PORT <= len(set(server.ports)) < total / 4
    transport = mdns.transport()
    assert transport._open[socket.AF_INET] <= mdns.PORT_POOL  # the worn ones are closed


def test_an_answer_to_another_of_our_ports_is_ignored():
    # A forger who knows the query id and question but not the port: its answer, sent first to
    # another socket of ours, is dropped; the real one that follows is taken.
    def forge(query, source, sock):
        forged = answer(query, "203.0.113.66").to_wire()
        for port in set(seen) - {source[1]}:
            sock.sendto(forged, ("127.0.0.1", port))
        seen.add(source[1])

    seen: set[int] = set()
    with RecordingServer(before_answer=forge) as server:
        session = DnsSession([("127.0.0.1", server.port)])
        for i in range(mdns.PORT_POOL + 2):
            assert addresses(session, f"q{i}.test") == ["192.0.2.1"]
    assert len(seen) > 1


def test_an_answer_from_another_address_is_ignored():
    # The right id, question and port, from the wrong server: a timeout, not the forgery.
    def forge(query, source, sock):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.2", 0))
            other.sendto(answer(query, "203.0.113.66").to_wire(), source)

    class Silent(RecordingServer):
        def _serve(self):
            while not self._stop.is_set():
                try:
                    wire, source = self.sock.recvfrom(4096)
                except TimeoutError:
                    continue
                forge(dns.message.from_wire(wire), source, self.sock)

    with Silent() as server:
        session = DnsSession([("127.0.0.1", server.port)], lifetime=0.5)
        with pytest.raises(LookupFailed):
            session.lookup("spoofed.test", "A")
