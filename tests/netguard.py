"""Keep every test on this machine: a connection to any address outside loopback fails the test.

Installed as an audit hook (PEP 578), so it sees every socket of the test process, whatever
library opens it. Names other than localhost are refused at resolution time, because the
system resolver would send the query off the machine.
"""

import ipaddress
import socket
import sys

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


def _audit(event: str, args: tuple) -> None:
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
