"""Keep every test on this machine: a connection to any address outside loopback fails the test.

Installed as an audit hook (PEP 578), so it sees every socket of the test process, whatever
library opens it. Names other than localhost are refused at resolution time, because the
system resolver would send the query off the machine.
"""

import contextlib
import ipaddress
import socket
import sys
from collections.abc import Iterator

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NetworkLeak(RuntimeError):
    pass


def _is_loopback_host(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).split("%", 1)[0]
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_recordings: list[list[tuple[str, str, int]]] = []


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, str, int]]]:
    """Every datagram sent, connection opened and name resolved by the process (any thread)
    inside the block, as ("udp" | "tcp", host, port) or ("getaddrinfo", name, port): what a
    test asserts DNS traffic against."""
    seen: list[tuple[str, str, int]] = []
    _recordings.append(seen)
    try:
        yield seen
    finally:
        _recordings.remove(seen)


def _record(event: str, args: tuple) -> None:
    if event == "socket.getaddrinfo":
        entry = ("getaddrinfo", str(args[0]), args[1])
    elif args[0].family in (socket.AF_INET, socket.AF_INET6):
        kind = "udp" if args[0].type == socket.SOCK_DGRAM else "tcp"
        entry = (kind, str(args[1][0]), int(args[1][1]))
    else:
        return
    for seen in list(_recordings):
        seen.append(entry)


def _audit(event: str, args: tuple) -> None:
    if _recordings and event in ("socket.connect", "socket.sendto", "socket.getaddrinfo"):
        _record(event, args)
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[1]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(address[0]):
            raise NetworkLeak(f"test tried to reach {address!r}: only loopback is allowed")
    elif event == "socket.getaddrinfo" and not _is_loopback_host(args[0]):
        raise NetworkLeak(f"test tried to resolve {args[0]!r}: only loopback is allowed")


_installed = False


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
