import pytest

from tests.domains import dns_world
from tests.knot import KnotServer


@pytest.fixture(scope="session")
def knot(tmp_path_factory):
    """A real authoritative DNS server on loopback serving the test world (dns_world.py)."""
    server = KnotServer(tmp_path_factory.mktemp("knot"), dns_world.zones(), broken=["broken.test"])
    server.start()
    yield server
    server.stop()
