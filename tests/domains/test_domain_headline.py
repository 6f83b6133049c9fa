"""The "DMARC reports" card of a domain's page (issue 14): the last 30 days in four numbers
(messages, DMARC pass rate, sources, failing sources) from the rollups, in a bounded number of
queries; or, without reports, where they come from."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.models import Domain
from reports.models import DailyRollup
from tests.conftest import client_for


def rollup(name, days_ago, ip, messages, passed, team=None):
    """A rollup of reports received by `team` (reports belong to a team), by default the team
    monitoring `name`."""
    DailyRollup.objects.create(
        organization=team or Domain.objects.get(name=name).organization,
        domain=name,
        day=timezone.now().date() - timedelta(days=days_ago),
        source_ip=ip,
        messages=messages,
        dmarc_pass=passed,
        disposition_none=messages,
    )


def headline(page: str) -> dict[str, str]:
    cells = re.findall(r'<dd data-headline="([a-z-]+)">(.*?)</dd>', page, re.S)
    text = {key: re.sub(r"<[^>]+>", " ", value) for key, value in cells}
    return {key: " ".join(value.split()) for key, value in text.items()}


def test_the_card_shows_the_last_30_days(alice, acme, globex):
    domain = Domain.objects.create(organization=acme, name="acme.example")
    rollup("acme.example", 0, "192.0.2.1", 40000, 40000)
    rollup("acme.example", 3, "192.0.2.1", 2000, 1500)  # failures: the source fails
    rollup("acme.example", 29, "192.0.2.2", 694, 694)
    rollup("acme.example", 10, "2001:db8::25", 0, 0)
    rollup("acme.example", 30, "192.0.2.9", 5000, 0)  # 31 days ago counts today: too old
    rollup("other.example", 1, "192.0.2.7", 777, 0, team=acme)  # another domain
    rollup("acme.example", 1, "192.0.2.8", 999, 0, team=globex)  # reports Globex received
    page = client_for(alice).get(f"/domains/{domain.pk}/").content.decode()
    assert headline(page) == {
        "messages": "42,694",  # grouped in the reader's language
        "dmarc-rate": "98.8%",  # 42194 of 42694
        "sources": "3 IP addresses",
        "failing-sources": "1 sending mail that fails DMARC",
    }
    assert "No DMARC aggregate reports" not in page
    assert f'href="/reports/domain/{domain.pk}/"' in page


def test_without_reports_the_card_says_where_they_come_from(alice, acme):
    domain = Domain.objects.create(organization=acme, name="quiet.example")
    rollup("quiet.example", 45, "192.0.2.1", 10, 10)  # older than 30 days
    page = client_for(alice).get(f"/domains/{domain.pk}/").content.decode()
    assert headline(page) == {}
    assert "No DMARC aggregate reports for quiet.example yet in the last 30 days." in page
    assert "<code>rua=mailto:dmarc@quiet.example</code>" in page


def test_the_card_costs_the_same_queries_for_many_sources(alice, acme):
    domain = Domain.objects.create(organization=acme, name="busy.example")
    client = client_for(alice)
    rollup("busy.example", 0, "192.0.2.1", 5, 5)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/domains/{domain.pk}/").status_code == 200
        return len(captured)

    few = queries()
    for day in range(30):
        for host in range(2, 12):
            rollup("busy.example", day, f"198.51.100.{host}", 3, day % 2 * 3)
    assert queries() == few
    page = client.get(f"/domains/{domain.pk}/").content.decode()
    assert headline(page)["sources"] == "11 IP addresses"
    assert headline(page)["failing-sources"].startswith("10 ")


def test_another_team_sees_nothing_of_the_domain(olga, acme):
    domain = Domain.objects.create(organization=acme, name="acme.example")
    rollup("acme.example", 0, "192.0.2.1", 10, 10)
    assert client_for(olga).get(f"/domains/{domain.pk}/").status_code == 404
