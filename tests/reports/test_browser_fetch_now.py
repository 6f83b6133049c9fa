"""'Fetch now' in a real browser, the pass run by a real Celery worker: when it ends, the
mailbox's card (last pass, last error, next poll) updates in place, without a reload."""

import socket

import pytest
from playwright.sync_api import expect

from reports import secrets
from reports.models import Mailbox
from tests.test_browser import CHECK_TIMEOUT_MS, chromium_page, sign_in


def closed_port() -> int:
    """A loopback port nobody listens on: the pass fails to connect, at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_fetch_now_updates_the_card_in_place(live_server, celery_worker, alice, acme):
    mailbox = Mailbox.objects.create(
        organization=acme,
        name="rua",
        host="127.0.0.1",
        port=closed_port(),
        username="dmarc@acme.example",
        password_encrypted=secrets.encrypt("secret"),
        interval_minutes=15,
    )
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)
        page.goto(f"{base}/reports/mailboxes/")
        facts = page.locator(f"#mailbox-{mailbox.pk}-facts")
        expect(facts).to_contain_text("due now")  # new: never polled
        expect(facts).to_contain_text("none yet")
        page.evaluate("window.sameDocument = true")  # a full page load would wipe it out
        page.click("button:text-is('Fetch now')")
        status = page.locator(f"#fetch-status-{mailbox.pk}")
        try:
            expect(status).to_contain_text("The fetch failed", timeout=CHECK_TIMEOUT_MS)
        except AssertionError:
            pytest.fail(f"{status.inner_text()!r}; worker log:\n{celery_worker.output()}")
        expect(facts).not_to_contain_text("none yet")  # swapped in: the last pass
        shown = facts.inner_text()
        same_document = page.evaluate("window.sameDocument")
    mailbox.refresh_from_db()
    assert same_document is True
    assert mailbox.last_error and mailbox.next_poll_at
    assert "due now" not in shown
    assert mailbox.next_poll_at.strftime("%Y-%m-%d %H:%M") in shown  # when the next attempt is
    assert "Failed" in shown or "failed" in shown
