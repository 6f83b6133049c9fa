"""Partial and failed runs on the pages (issue 11, item 10; item 7's page and banner): a grade
computed without some categories is marked "partial"; a run that could not test leaves the
last known grade on show, marked, instead of "?"; when the resolver could not be trusted the
domain page and the staff banner say so. Runs are real checks against knot, some through a
lying resolver in front of it. The domain whose grades are followed has a null MX and no mail
access hosts: every category is judged from DNS alone (no mail server to probe), so a run
that answers everything is "complete"."""

import re

import pytest
from django.urls import reverse

from domains import scheduling
from domains.models import Domain, DomainEvent, EventKind
from tests.conftest import client_for
from tests.lying_resolver import NXDOMAIN_EVERYTHING, LyingResolver


@pytest.fixture
def use(settings):
    """Check through this resolver from now on."""

    def point(host: str, port: int) -> None:
        settings.MAILSEC_DNS_NAMESERVERS = [(host, port)]

    return point


def grade_cell(html: str, name: str) -> str:
    row = re.search(rf"<tr>\s*<td><a [^>]*>{re.escape(name)}</a>.*?</tr>", html, re.S)
    assert row, f"no row for {name}"
    return row.group(0).split("<td")[2]


def test_a_run_that_could_not_test_keeps_the_last_known_grade(alice, acme, knot, use):
    domain = Domain.objects.create(organization=acme, name="parkednull.test")
    use(knot.host, knot.port)
    good = scheduling.run_check(domain.pk)
    assert good.status == "complete" and good.grade in ("A", "A+")
    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        use(liar.host, liar.port)
        failed = scheduling.run_check(domain.pk)
    assert (failed.status, failed.grade, failed.score) == ("error", "", None)

    domain.refresh_from_db()
    assert domain.last_run == failed
    assert (domain.grade, domain.score) == (good.grade, good.score)  # not "?"
    assert domain.graded_at == good.finished_at < domain.last_checked_at
    assert domain.grade_is_last_known and not domain.grade_partial
    # Every category it could test before says why it cannot now (one finding holds the reason).
    events = DomainEvent.objects.filter(domain=domain, kind=EventKind.CHECK_FAILED)
    assert events.count() == len(failed.categories)
    assert all("answers NXDOMAIN for the root zone's SOA" in e.summary for e in events)

    client = client_for(alice)
    cell = grade_cell(client.get(reverse("domains:list")).content.decode(), "parkednull.test")
    assert f">{good.grade}</span>" in cell and "last known" in cell and "?" not in cell
    page = client.get(reverse("domains:detail", args=[domain.pk])).content.decode()
    assert "last known" in page
    assert "the grade shown is the last known one" in page
    assert "Nothing was tested: the resolver could not be trusted." in page
    assert "answers NXDOMAIN for the root zone&#x27;s SOA" in page
    # The "could not test" filter still finds it.
    listed = client.get(reverse("domains:list") + "?grade=error").content.decode()
    assert "parkednull.test" in listed


def test_the_staff_banner_says_the_resolver_cannot_be_trusted(alice, acme, knot, use):
    domain = Domain.objects.create(organization=acme, name="good.test")
    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        use(liar.host, liar.port)
        scheduling.run_check(domain.pk)
    banner = "the DNS resolver cannot be trusted"
    assert banner not in client_for(alice).get(reverse("domains:list")).content.decode()
    alice.is_staff = True
    alice.save()
    assert banner in client_for(alice).get(reverse("domains:list")).content.decode()
    # A judged run since: the resolver works again, the banner goes.
    use(knot.host, knot.port)
    scheduling.run_check(domain.pk)
    assert banner not in client_for(alice).get(reverse("domains:list")).content.decode()


def test_a_grade_without_some_categories_is_marked_partial(alice, acme, knot, use):
    domain = Domain.objects.create(organization=acme, name="parkednull.test")
    # Only DMARC's record cannot be had: the other categories are judged.
    with LyingResolver((knot.host, knot.port), refuse=["_dmarc.parkednull.test"]) as liar:
        use(liar.host, liar.port)
        run = scheduling.run_check(domain.pk)
    assert run.status == "partial" and run.grade
    assert run.categories["dmarc"]["status"] == "error"
    domain.refresh_from_db()
    assert domain.grade_partial and not domain.grade_is_last_known

    client = client_for(alice)
    cell = grade_cell(client.get(reverse("domains:list")).content.decode(), "parkednull.test")
    assert f">{run.grade}</span>" in cell and "partial" in cell
    page = client.get(reverse("domains:detail", args=[domain.pk])).content.decode()
    assert "This grade is partial" in page

    use(knot.host, knot.port)
    scheduling.run_check(domain.pk)
    domain.refresh_from_db()
    assert not domain.grade_partial
    cell = grade_cell(client.get(reverse("domains:list")).content.decode(), "parkednull.test")
    assert "partial" not in cell and "last known" not in cell
