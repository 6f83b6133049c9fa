"""A DNS forwarder on loopback that holds answers back, or never gives them.

Put it between a client and a local authoritative server (knot) to make the client see the
latency of a resolver across the internet (`delay`), or time out on chosen names (`drop`):

    forwarder = DnsForwarder(("127.0.0.1", knot_port), delay=0.025, drop=["gone.example.test"],
                             slow=["slow.example.test"], slow_delay=2.0)
    forwarder.start()
    ... query forwarder.host:forwarder.port over UDP or TCP ...
    forwarder.stop()

    python -m bench.dns_forwarder --upstream 127.0.0.1:5353 --delay 0.025 --port 5354
    python -m bench.dns_forwarder --upstream 127.0.0.1:5353 --slow @slow-names.txt --slow-delay 2

`slow` names (and names under them) are held back `slow_delay` more than the others, as a
far-away or overloaded authoritative server would.

Every query is its own asyncio task on a loop in a background thread, so a delay never holds
back other queries. Only loopback addresses are accepted, for listening and for the upstream.
"""

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable

import dns.exception
import dns.message
import dns.name
import dns.rcode

MAX_MESSAGE = 65535
RECEIVE_BUFFER = 4 << 20


def _loopback(address: str, what: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{what} must be a loopback IP address, not {address!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"{what} must be on loopback (127.0.0.0/8 or ::1), not {address}")
    return str(ip)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, forwarder: "DnsForwarder"):
        self.forwarder = forwarder

    def datagram_received(self, data: bytes, addr) -> None:
        self.forwarder._received_udp(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error about an earlier reply to a client that went away: nothing to do.
        pass


class DnsForwarder:
    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        delay: float = 0.0,
        drop: Iterable[str] = (),
        slow: Iterable[str] = (),
        slow_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int | None = None,
        upstream_timeout: float = 5.0,
    ):
        self.upstream = (_loopback(upstream[0], "upstream"), int(upstream[1]))
        self.host = _loopback(host, "listen address")
        self.port = port or 0
        if delay < 0 or slow_delay < 0:
            raise ValueError("delays must not be negative")
        self.delay = delay
        # A set, looked up with each ancestor of a query's name: thousands of names cost
        # a few lookups per query.
        self.slow = {dns.name.from_text(name) for name in slow}
        self.slow_delay = slow_delay
        # Matched label by label, so dropping "example.test" drops "a.example.test" but not
        # "badexample.test"; dns.name comparisons ignore case.
        self.drop = tuple(dns.name.from_text(name) for name in drop)
        self.upstream_timeout = upstream_timeout
        self.queries = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the forwarder is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dns-forwarder", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        except BaseException:
            self._shutdown_loop()
            raise

    def stop(self) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._shutdown_loop()

    def __enter__(self) -> "DnsForwarder":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = None
        self._loop = None

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        # With port 0 the kernel picks a UDP port; TCP must get the same one, which may be
        # taken, so try a few.
        for _ in range(20 if self.port == 0 else 1):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpListener(self), local_addr=(self.host, self.port)
            )
            # A burst of queries outruns the default buffer (~300 queries) before the loop
            # reads it; the kernel caps this at net.core.rmem_max.
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER
            )
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                transport.close()
                if self.port != 0:
                    raise
                continue
            self._udp = transport
            self.port = port
            return
        raise RuntimeError(f"no port free for both UDP and TCP on {self.host}")

    async def _close(self) -> None:
        self._udp.close()
        self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._tcp.wait_closed()

    # --- queries -------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dropped(self, query: bytes) -> bool:
        if not self.drop:
            return False
        try:
            qname = dns.message.from_wire(query, question_only=True).question[0].name
        except (dns.exception.DNSException, IndexError):
            return False  # let the upstream answer what it makes of it
        return any(qname.is_subdomain(name) for name in self.drop)

    def _delay_of(self, query: bytes) -> float:
        if not self.slow:
            return self.delay
        try:
            name = dns.message.from_wire(query, question_only=True).question[0].name
        except (dns.exception.DNSException, IndexError):
            return self.delay
        while len(name) > 1:  # up to, not including, the root
            if name in self.slow:
                return self.delay + self.slow_delay
            name = name.parent()
        return self.delay

    def _received_udp(self, data: bytes, addr) -> None:
        self.queries += 1
        if not self._dropped(data):
            self._spawn(self._answer_udp(data, addr))

    async def _answer_udp(self, query: bytes, addr) -> None:
        answer = await self._ask(query, self._ask_udp)
        if answer is not None:
            await asyncio.sleep(self._delay_of(query))
            self._udp.sendto(answer, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        # Tracked like the per-query tasks, so that stop() can cancel a connection mid-read.
        handler = asyncio.current_task()
        self._tasks.add(handler)
        self._writers.add(writer)
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                query = await reader.readexactly(length)
                self.queries += 1
                if not self._dropped(query):
                    # Queries on one connection may be pipelined: answer each when it is ready.
                    self._spawn(self._answer_tcp(query, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(handler)
            writer.close()

    async def _answer_tcp(self, query: bytes, writer: asyncio.StreamWriter) -> None:
        answer = await self._ask(query, self._ask_tcp)
        if answer is not None:
            await asyncio.sleep(self._delay_of(query))
            if not writer.is_closing():
                writer.write(struct.pack("!H", len(answer)) + answer)

    async def _ask(self, query: bytes, transport) -> bytes | None:
        """The upstream's answer, or SERVFAIL as a resolver gives when its upstream fails."""
        try:
            return await asyncio.wait_for(transport(query), self.upstream_timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            try:
                response = dns.message.make_response(
                    dns.message.from_wire(query, question_only=True)
                )
            except (dns.exception.DNSException, IndexError):
                return None
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()

    async def _ask_udp(self, query: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        with socket.socket(_family(self.upstream[0]), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(self.upstream)
            await loop.sock_sendall(sock, query)
            while True:
                answer = await loop.sock_recv(sock, MAX_MESSAGE)
                if answer[:2] == query[:2]:  # ignore a stray datagram with another ID
                    return answer

    async def _ask_tcp(self, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dns_forwarder",
        description="Forward DNS queries on loopback, holding answers back or dropping them.",
        fromfile_prefix_chars="@",  # --slow @names.txt: one name a line
    )
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT (loopback)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to hold each answer")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument(
        "--drop",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="never answer queries for these names or names under them",
    )
    parser.add_argument(
        "--slow",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="hold answers for these names (and names under them) back --slow-delay more",
    )
    parser.add_argument("--slow-delay", type=float, default=0.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        forwarder = DnsForwarder(
            args.upstream,
            delay=args.delay,
            drop=args.drop,
            slow=args.slow,
            slow_delay=args.slow_delay,
            host=args.host,
            port=args.port,
        )
    except ValueError as error:
        parser.error(str(error))
    forwarder.start()
    upstream = "{}:{}".format(*forwarder.upstream)
    print(
        f"forwarding {forwarder.host}:{forwarder.port} (UDP, TCP) to {upstream}, "
        f"delay {args.delay * 1000:g} ms, dropping {args.drop or 'nothing'}, "
        f"{len(forwarder.slow)} names {args.slow_delay * 1000:g} ms slower; Ctrl-C stops",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        forwarder.stop()
        print(f"{forwarder.queries} queries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
