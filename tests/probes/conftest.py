import pytest

from domains.dns import DnsSession
from tests.knot import KnotServer
from tests.mailservers import lab_zones


@pytest.fixture(scope="session")
def lab_knot(tmp_path_factory):
    """knot serving the lab's names and the PTR records of 127.0.30.0/24."""
    server = KnotServer(tmp_path_factory.mktemp("labknot"), lab_zones())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lab_dns(lab_knot):
    return DnsSession([(lab_knot.host, lab_knot.port)])
