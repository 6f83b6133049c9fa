"""The fragment a finished "check now" swaps into the domain's page (domains/_live.html): the
same includes as the page, so what arrives in place is what a reload would show."""

import re

from django.utils import timezone

from domains.models import ManualCheck
from tests.conftest import client_for
from tests.domains.test_pages import NO_DMARC, NO_SPF, add_run

LIVE_IDS = ["verdict-grade", "verdict-text", "domain-run", "history", "domain-records", "timeline"]


def top_level_ids(html: str) -> list[str]:
    return re.findall(r'^<(?:div|section) [^>]*id="([^"]+)"', html, re.MULTILINE)


def test_live_fragment_before_any_check(alice, acme_domain):
    response = client_for(alice).get(f"/domains/{acme_domain.pk}/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert top_level_ids(html) == LIVE_IDS
    assert "has not been checked yet" in html
    assert "<html" not in html  # a fragment, not the page


def test_live_fragment_is_what_the_page_shows(alice, acme_domain):
    add_run(acme_domain, score=55, grade="D", findings=[NO_SPF, NO_DMARC])
    client = client_for(alice)
    live = client.get(f"/domains/{acme_domain.pk}/live/").content.decode()
    page = client.get(f"/domains/{acme_domain.pk}/").content.decode()
    assert "has not been checked yet" not in live
    assert 'data-grade="D"' in live and "Score <b>55</b>" in live
    assert "No SPF record" in live and "No DMARC record" in live
    assert 'class="list categories"' in live and "svg" in live
    for element_id in LIVE_IDS:  # each part is on the page, rendered the same way
        part = re.search(rf'<(div|section) [^>]*id="{element_id}".*?</\1>', live, re.DOTALL)
        assert part and part.group(0) in page, element_id


def test_live_fragment_of_another_team_is_not_found(olga, victor, alice, acme_domain):
    add_run(acme_domain, score=90, grade="A")
    assert client_for(olga).get(f"/domains/{acme_domain.pk}/live/").status_code == 404
    assert client_for(victor).get(f"/domains/{acme_domain.pk}/live/").status_code == 200
    assert client_for(alice).post(f"/domains/{acme_domain.pk}/live/").status_code == 405


def test_finished_check_names_the_fragment_to_fetch(alice, acme_domain):
    run = add_run(acme_domain, score=90, grade="A")
    manual = ManualCheck.objects.create(
        domain=acme_domain, user=alice, requested_at=timezone.now(), state="done", run=run
    )
    status = client_for(alice).get(f"/domains/{acme_domain.pk}/check/{manual.pk}/")
    html = status.content.decode()
    assert f'data-refresh="/domains/{acme_domain.pk}/live/"' in html
    assert "data-poll" not in html
