"""What a finished "fetch now" swaps into its mailbox's card (reports/_mailbox_facts.html, the
card's own include): the last pass, the last error and when the next poll is; and that a pass
outside the scheduler (fetch now, a new mailbox's first) plans the next poll instead of leaving
it "due now"."""

from datetime import timedelta

from django.utils import timezone

from reports import fetch, secrets
from reports.models import Mailbox, MailboxPass
from tests.conftest import client_for
from tests.reports.test_fetch import make_mailbox as dovecot_mailbox
from tests.reports.test_mailbox_pages import FRAGMENT, encryption_key, make_mailbox  # noqa: F401


def facts(client, mailbox) -> str:
    response = client.get(f"/reports/mailboxes/{mailbox.pk}/facts/", **FRAGMENT)
    assert response.status_code == 200
    return response.content.decode()


def test_the_facts_fragment_is_the_cards_facts(alice, acme):
    mailbox = make_mailbox(acme)
    client = client_for(alice)
    text = facts(client, mailbox)
    assert text.strip().startswith(f'<dl class="facts" id="mailbox-{mailbox.pk}-facts">')
    assert "<html" not in text and "Last pass" in text and "Next poll" in text
    assert text.strip() in client.get("/reports/mailboxes/").content.decode()


def test_the_facts_fragment_of_another_team_is_not_found(olga, victor, acme):
    mailbox = make_mailbox(acme)
    assert client_for(olga).get(f"/reports/mailboxes/{mailbox.pk}/facts/").status_code == 404
    assert "Last pass" in facts(client_for(victor), mailbox)  # viewers read it


def test_a_finished_pass_names_the_facts_to_fetch(alice, acme):
    mailbox = make_mailbox(acme)
    client = client_for(alice)
    run = MailboxPass.objects.create(mailbox=mailbox)
    url = f"/reports/mailboxes/{mailbox.pk}/passes/{run.pk}/"
    assert "data-refresh" not in client.get(url, **FRAGMENT).content.decode()
    for state in ("done", "failed", "skipped"):
        MailboxPass.objects.filter(pk=run.pk).update(state=state)
        text = client.get(url, **FRAGMENT).content.decode()
        assert f'data-refresh="/reports/mailboxes/{mailbox.pk}/facts/"' in text
        assert "data-poll" not in text and "Reload" not in text


def test_a_failed_fetch_now_plans_the_next_attempt(alice, acme, imap_account):
    mailbox = dovecot_mailbox(
        acme, imap_account, password_encrypted=secrets.encrypt("wrong"), interval_minutes=15
    )
    assert mailbox.next_poll_at is None  # new: never polled
    run = fetch.run_pass(mailbox.pk, trigger="manual")
    assert run.state == "failed"
    mailbox.refresh_from_db()
    assert mailbox.next_poll_at == run.finished_at + timedelta(minutes=15)
    text = facts(client_for(alice), mailbox)
    assert "due now" not in text
    assert mailbox.next_poll_at.strftime("%Y-%m-%d %H:%M") in text
    assert "login refused" in text  # the last error, in place


def test_a_pass_keeps_the_schedulers_plan(acme, imap_account):
    mailbox = dovecot_mailbox(acme, imap_account, password_encrypted=secrets.encrypt("wrong"))
    planned = timezone.now() + timedelta(minutes=3)
    Mailbox.objects.filter(pk=mailbox.pk).update(next_poll_at=planned)
    fetch.run_pass(mailbox.pk, trigger="manual")
    mailbox.refresh_from_db()
    assert mailbox.next_poll_at == planned


def test_a_disabled_mailbox_gets_no_plan(acme, imap_account):
    mailbox = dovecot_mailbox(
        acme, imap_account, password_encrypted=secrets.encrypt("wrong"), enabled=False
    )
    fetch.run_pass(mailbox.pk, trigger="manual")
    mailbox.refresh_from_db()
    assert mailbox.next_poll_at is None
