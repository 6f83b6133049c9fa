"""The suite cannot reach past loopback: the guard turns a leak into a failure."""

import socket

import pytest

from tests.netguard import NetworkLeak


def test_connect_outside_loopback_is_refused():
    with socket.socket() as sock, pytest.raises(NetworkLeak):
        sock.connect(("192.0.2.1", 25))


def test_udp_outside_loopback_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(NetworkLeak):
        sock.sendto(b"x", ("9.9.9.9", 53))


def test_resolving_a_public_name_is_refused():
    with pytest.raises(NetworkLeak):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
