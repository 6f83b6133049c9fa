"""The report mailbox pages: the list and its status data, adding, editing and deleting, the
password that never comes back, who may do what, the connection test against a real dovecot,
and "fetch now" with its progress partial."""

import html
import logging
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reports import secrets, tasks
from reports.models import Mailbox, MailboxPass
from tests.conftest import client_for

PASSWORD = "Tr0ub4dor&3-never-shown"
FRAGMENT = {"HTTP_X_MAILSEC_FRAGMENT": "1"}


@pytest.fixture(autouse=True)
def encryption_key(settings):
    settings.MAILSEC_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture
def queued(monkeypatch):
    """The (mailbox_id, pass_id) of every fetch_mailbox.delay call: no worker runs here."""
    calls = []
    monkeypatch.setattr(tasks.fetch_mailbox, "delay", lambda *args: calls.append(args))
    return calls


def make_mailbox(organization, name="DMARC reports", password=PASSWORD, **fields) -> Mailbox:
    fields = {
        "host": "imap.acme.example",
        "port": 993,
        "username": "dmarc@acme.example",
        **fields,
    }
    return Mailbox.objects.create(
        organization=organization,
        name=name,
        password_encrypted=secrets.encrypt(password),
        **fields,
    )


def form_data(**changes) -> dict:
    data = {
        "name": "DMARC reports",
        "protocol": "imap",
        "host": "imap.acme.example",
        "port": "993",
        "tls_mode": "implicit",
        "username": "dmarc@acme.example",
        "password": PASSWORD,
        "folder": "INBOX",
        "processed_folder": "dmarc/processed",
        "invalid_folder": "dmarc/invalid",
        "interval_minutes": "5",
        "enabled": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def page(response) -> str:
    return response.content.decode()


def shows(text: str, secret: str) -> bool:
    """Whether the page holds the secret, as typed or HTML-escaped ("&" becomes "&amp;")."""
    return secret in text or html.escape(secret) in text


# --- the list -------------------------------------------------------------------------------


def test_list_shows_each_mailboxs_status(alice, bob, victor, acme, globex):
    now = timezone.now()
    mailbox = make_mailbox(
        acme,
        folder="Reports/DMARC",
        next_poll_at=now + timedelta(minutes=4),
        last_error="imap.acme.example refused LOGIN: [AUTHENTICATIONFAILED] nope",
        last_error_at=now - timedelta(hours=2),
    )
    run = MailboxPass.objects.create(
        mailbox=mailbox,
        state=MailboxPass.State.DONE,
        finished_at=now - timedelta(minutes=1),
        total=9,
        fetched=8,
        imported=5,
        duplicates=2,
        invalid=1,
    )
    Mailbox.objects.filter(pk=mailbox.pk).update(last_pass=run)
    make_mailbox(acme, name="Old inbox", host="192.0.2.7", enabled=False, read_only=True)
    make_mailbox(globex, name="Globex secret box", host="imap.globex.example")
    for user in (alice, bob, victor):
        text = page(client_for(user).get("/reports/mailboxes/"))
        assert "DMARC reports" in text and "Enabled" in text
        assert "imap.acme.example" in text and "dmarc@acme.example" in text
        assert "Reports/DMARC" in text
        assert "8 messages fetched of 9 new, 5 imported, 2 duplicates, 1 invalid" in text
        assert run.finished_at.strftime("%Y-%m-%d %H:%M") in text
        assert "[AUTHENTICATIONFAILED] nope" in text
        assert mailbox.last_error_at.strftime("%Y-%m-%d %H:%M") in text
        assert (now + timedelta(minutes=4)).strftime("%Y-%m-%d %H:%M") in text
        assert "Old inbox" in text and "Disabled" in text and "read-only" in text
        assert "Globex" not in text
        assert not shows(text, PASSWORD)
    owner, member, viewer = (
        page(client_for(u).get("/reports/mailboxes/")) for u in (alice, bob, victor)
    )
    assert all(w in owner for w in ("Add a mailbox", "Test connection", "Edit", "Fetch now"))
    assert "Fetch now" in member
    assert not any(w in member for w in ("Add a mailbox", "Test connection", ">Edit<"))
    assert not any(w in viewer for w in ("Add a mailbox", "Test connection", "Fetch now"))


def test_list_follows_a_pass_in_progress(alice, acme):
    mailbox = make_mailbox(acme)
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=timezone.now() + timedelta(minutes=5))
    run = MailboxPass.objects.create(
        mailbox=mailbox, state=MailboxPass.State.RUNNING, total=30, fetched=10, imported=10
    )
    text = page(client_for(alice).get("/reports/mailboxes/"))
    assert f'data-poll="/reports/mailboxes/{mailbox.pk}/passes/{run.pk}/"' in text
    assert "Fetching: 10 of 30 messages" in text


def test_list_query_count_does_not_grow_with_the_mailboxes(alice, acme):
    client = client_for(alice)

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/reports/mailboxes/").status_code == 200
        return len(captured)

    def add(n):
        mailbox = make_mailbox(acme, name=f"box {n}")
        done = MailboxPass.objects.create(
            mailbox=mailbox, state=MailboxPass.State.DONE, finished_at=timezone.now()
        )
        Mailbox.objects.filter(pk=mailbox.pk).update(last_pass=done)
        MailboxPass.objects.create(mailbox=mailbox)  # queued now: shown with its progress

    add(0)
    one = queries_for_list()
    for n in range(1, 10):
        add(n)
    text = page(client.get("/reports/mailboxes/"))
    assert text.count("Fetch queued") == 10 and "box 9" in text
    assert queries_for_list() == one
    assert one <= 8


def test_settings_page_links_to_the_mailboxes(victor):
    text = page(client_for(victor).get("/settings/mailboxes/"))
    assert "Report mailboxes" in text and 'href="/reports/mailboxes/"' in text


# --- add, edit, delete ----------------------------------------------------------------------


def test_owner_adds_a_mailbox(alice, acme):
    client = client_for(alice)
    form = client.get("/reports/mailboxes/add/")
    assert form.status_code == 200 and 'type="password"' in page(form)
    response = client.post(
        "/reports/mailboxes/add/", form_data(host="  IMAP.Acme.Example. ", port="143")
    )
    assert response.status_code == 302
    mailbox = Mailbox.objects.get(organization=acme)
    assert (mailbox.host, mailbox.port, mailbox.tls_mode) == ("imap.acme.example", 143, "implicit")
    assert (mailbox.folder, mailbox.processed_folder) == ("INBOX", "dmarc/processed")
    assert mailbox.interval_minutes == 5 and mailbox.enabled and not mailbox.allow_plaintext
    assert PASSWORD not in mailbox.password_encrypted
    assert secrets.decrypt(mailbox.password_encrypted) == PASSWORD
    listing = page(client.get("/reports/mailboxes/"))
    assert "Added the mailbox DMARC reports" in listing and not shows(listing, PASSWORD)


def test_adding_needs_a_password(alice, acme):
    response = client_for(alice).post("/reports/mailboxes/add/", form_data(password=""))
    assert response.status_code == 200 and "This field is required." in page(response)
    assert not Mailbox.objects.exists()


def test_a_blank_password_on_edit_keeps_the_stored_one(alice, acme):
    mailbox = make_mailbox(acme)
    stored = mailbox.password_encrypted
    client = client_for(alice)
    response = client.post(
        f"/reports/mailboxes/{mailbox.pk}/edit/",
        form_data(password="", name="Renamed", interval_minutes="60", enabled=None),
    )
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.interval_minutes, mailbox.enabled) == ("Renamed", 60, False)
    assert mailbox.password_encrypted == stored
    assert secrets.decrypt(mailbox.password_encrypted) == PASSWORD

    client.post(f"/reports/mailboxes/{mailbox.pk}/edit/", form_data(password=" new one "))
    mailbox.refresh_from_db()
    assert secrets.decrypt(mailbox.password_encrypted) == " new one "


def test_the_password_is_never_sent_back(alice, acme, caplog):
    caplog.set_level(logging.DEBUG)
    mailbox = make_mailbox(acme)
    client = client_for(alice)
    edit = page(client.get(f"/reports/mailboxes/{mailbox.pk}/edit/"))
    assert 'name="password"' in edit
    assert not shows(edit, PASSWORD) and mailbox.password_encrypted not in edit
    # An invalid form comes back with its errors, and without the password typed into it.
    for url in ("/reports/mailboxes/add/", f"/reports/mailboxes/{mailbox.pk}/edit/"):
        response = client.post(url, form_data(name="Other", host="https://imap.acme.example/"))
        text = page(response)
        assert response.status_code == 200 and "not a URL" in text
        assert not shows(text, PASSWORD)
    mailbox.refresh_from_db()
    assert mailbox.host == "imap.acme.example"
    assert not shows(caplog.text, PASSWORD)


def test_plain_mode_needs_the_explicit_checkbox(alice, acme):
    client = client_for(alice)
    refused = client.post("/reports/mailboxes/add/", form_data(tls_mode="plain", port="143"))
    assert refused.status_code == 200
    assert "tick this box to allow it" in page(refused)
    assert "anyone on the way can read them" in page(refused)  # the warning stays in sight
    assert not Mailbox.objects.exists()

    client.post(
        "/reports/mailboxes/add/", form_data(tls_mode="plain", port="143", allow_plaintext="on")
    )
    mailbox = Mailbox.objects.get()
    assert mailbox.tls_mode == "plain" and mailbox.allow_plaintext

    # The consent goes with the choice: switching to TLS drops it.
    client.post(
        f"/reports/mailboxes/{mailbox.pk}/edit/",
        form_data(tls_mode="starttls", port="143", allow_plaintext="on", password=""),
    )
    mailbox.refresh_from_db()
    assert mailbox.tls_mode == "starttls" and not mailbox.allow_plaintext


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"host": "https://imap.acme.example"}, "not a URL"),
        ({"host": "imap.acme.example/mail"}, "not a URL"),
        ({"host": "imap.acme.example:993"}, "in the port field"),
        ({"host": "dmarc@imap.acme.example"}, "not an e-mail address"),
        ({"host": "imap acme.example"}, "cannot contain spaces"),
        ({"host": "-imap.acme.example"}, "not a valid host name"),
        ({"host": "imap..acme.example"}, "not a valid host name"),
        ({"host": ""}, "This field is required."),
        ({"port": "0"}, "greater than or equal to 1"),
        ({"port": "65536"}, "less than or equal to 65535"),
        ({"interval_minutes": "0"}, "greater than or equal to 1"),
        ({"interval_minutes": "1441"}, "less than or equal to 1440"),
        ({"folder": "  "}, "This field is required."),
        ({"folder": "dmarc/*"}, "cannot contain *"),
        ({"processed_folder": "/dmarc"}, "Use / only between folder levels"),
        ({"processed_folder": "INBOX"}, "This is the source folder"),
        ({"invalid_folder": "inbox"}, "This is the source folder"),
        ({"folder": "Reports", "processed_folder": "Reports"}, "This is the source folder"),
        ({"username": "  "}, "This field is required."),
        ({"tls_mode": "ssl3"}, "Select a valid choice."),
    ],
)
def test_bad_settings_are_refused(alice, acme, changes, error):
    response = client_for(alice).post("/reports/mailboxes/add/", form_data(**changes))
    assert response.status_code == 200
    assert error in page(response)
    assert not Mailbox.objects.exists()


def test_read_only_mode_ignores_the_move_folders(alice, acme):
    client_for(alice).post(
        "/reports/mailboxes/add/",
        form_data(read_only="on", processed_folder="INBOX", invalid_folder=""),
    )
    mailbox = Mailbox.objects.get()
    assert mailbox.read_only and mailbox.processed_folder == "INBOX"


def test_names_and_addresses(alice, acme, settings):
    client = client_for(alice)
    client.post("/reports/mailboxes/add/", form_data(host="[2001:DB8::1]"))
    client.post("/reports/mailboxes/add/", form_data(name="Two", host="bücher.example"))
    assert set(Mailbox.objects.values_list("host", flat=True)) == {
        "2001:db8::1",
        "xn--bcher-kva.example",
    }
    same_name = client.post("/reports/mailboxes/add/", form_data(name="two"))
    assert "already has a mailbox called two" in page(same_name)
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    private = client.post("/reports/mailboxes/add/", form_data(name="Three", host="10.1.2.3"))
    assert "does not connect to private addresses" in page(private)
    assert Mailbox.objects.count() == 2


def test_owner_deletes_after_confirming(alice, acme):
    mailbox = make_mailbox(acme)
    run = MailboxPass.objects.create(mailbox=mailbox, state=MailboxPass.State.DONE)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_pass=run)
    client = client_for(alice)
    confirm = client.get(f"/reports/mailboxes/{mailbox.pk}/delete/")
    assert confirm.status_code == 200 and "Delete the mailbox DMARC reports?" in page(confirm)
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()
    response = client.post(f"/reports/mailboxes/{mailbox.pk}/delete/")
    assert response.status_code == 302
    assert not Mailbox.objects.exists() and not MailboxPass.objects.exists()


# --- who may do what ------------------------------------------------------------------------


def change_requests(mailbox) -> list[tuple[str, str]]:
    base = f"/reports/mailboxes/{mailbox.pk}"
    return [
        ("get", "/reports/mailboxes/add/"),
        ("post", "/reports/mailboxes/add/"),
        ("get", f"{base}/edit/"),
        ("post", f"{base}/edit/"),
        ("get", f"{base}/delete/"),
        ("post", f"{base}/delete/"),
        ("post", f"{base}/test/"),
    ]


def test_a_viewer_changes_nothing(victor, acme, queued):
    mailbox = make_mailbox(acme)
    client = client_for(victor)
    for method, url in [
        *change_requests(mailbox),
        ("post", f"/reports/mailboxes/{mailbox.pk}/fetch/"),
    ]:
        response = getattr(client, method)(url, form_data(name="Hijacked"))
        assert response.status_code == 403, (method, url)
    mailbox.refresh_from_db()
    assert mailbox.name == "DMARC reports"
    assert Mailbox.objects.count() == 1 and not MailboxPass.objects.exists() and not queued


def test_a_member_may_fetch_but_not_manage(bob, acme, queued, django_capture_on_commit_callbacks):
    mailbox = make_mailbox(acme)
    client = client_for(bob)
    for method, url in change_requests(mailbox):
        response = getattr(client, method)(url, form_data(name="Hijacked"))
        assert response.status_code == 403, (method, url)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/reports/mailboxes/{mailbox.pk}/fetch/")
    assert response.status_code == 302
    run = MailboxPass.objects.get()
    assert (run.requested_by, run.trigger, run.state) == (bob, "manual", "queued")
    assert queued == [(mailbox.pk, run.pk)]
    mailbox.refresh_from_db()
    assert mailbox.name == "DMARC reports"


def test_another_teams_mailbox_is_not_found(olga, acme, globex, queued):
    mailbox = make_mailbox(acme)
    run = MailboxPass.objects.create(mailbox=mailbox)
    client = client_for(olga)
    for method, url in [
        *change_requests(mailbox)[2:],
        ("post", f"/reports/mailboxes/{mailbox.pk}/fetch/"),
        ("get", f"/reports/mailboxes/{mailbox.pk}/passes/{run.pk}/"),
    ]:
        response = getattr(client, method)(url, form_data(name="Hijacked"))
        assert response.status_code == 404, (method, url)
    # Nor through a mailbox of her own.
    own = make_mailbox(globex, name="Globex box")
    assert client.get(f"/reports/mailboxes/{own.pk}/passes/{run.pk}/").status_code == 404
    assert "DMARC reports" not in page(client.get("/reports/mailboxes/"))
    assert Mailbox.objects.get(pk=mailbox.pk).name == "DMARC reports"
    assert MailboxPass.objects.count() == 1 and not queued


# --- test connection against a real dovecot -------------------------------------------------


def dovecot_mailbox(organization, account, **fields) -> Mailbox:
    return make_mailbox(
        organization,
        host="127.0.0.1",
        port=account.server.imaps_port,
        username=account.user,
        password=account.password,
        **fields,
    )


def test_connection_test_shows_every_step(alice, acme, imap_account, settings, caplog):
    caplog.set_level(logging.DEBUG)
    assert str(imap_account.server.ca_file) == settings.MAILSEC_TLS_CA_FILE
    mailbox = dovecot_mailbox(acme, imap_account)
    response = client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/test/")
    text = page(response)
    assert response.status_code == 200
    assert "Every step passed" in text
    for name in ("DNS", "TCP", "TLS", "Login", "Folder INBOX", "Folder dmarc/processed"):
        assert f'<span aria-hidden="true">✓</span> {name}<' in text, name
    assert text.count("✓") == 7 and "✗" not in text
    assert f"logged in as {imap_account.user}" in text
    assert "certificate valid for 127.0.0.1" in text
    assert {"dmarc/processed", "dmarc/invalid"} <= imap_account.folders()
    assert not shows(text, imap_account.password)
    assert "LOGIN" in caplog.text and imap_account.password not in caplog.text


def test_connection_test_shows_the_failed_login(alice, acme, imap_account):
    mailbox = dovecot_mailbox(acme, imap_account, read_only=True)
    Mailbox.objects.filter(pk=mailbox.pk).update(password_encrypted=secrets.encrypt("wrong-pw"))
    text = page(client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/test/"))
    assert "The test failed at the step “Login”" in text
    assert text.count("✓") == 3 and text.count("✗") == 1
    assert '<span aria-hidden="true">✗</span> Login<' in text
    assert f"login refused for {imap_account.user}" in text
    assert "Authentication failed" in text  # what dovecot said
    assert 'data-stage="login"' in text
    assert not shows(text, "wrong-pw")
    assert imap_account.folders() == {"INBOX"}  # read-only: nothing created


def test_connection_test_with_an_unreadable_password(alice, acme, settings):
    mailbox = make_mailbox(acme)
    settings.MAILSEC_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key is gone
    text = page(client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/test/"))
    assert "cannot be decrypted" in text and "Enter the password again" in text
    assert "✓" not in text


# --- fetch now ------------------------------------------------------------------------------


def test_fetch_now_queues_a_pass_and_answers_with_its_progress(
    alice, acme, queued, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox(acme)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/fetch/", **FRAGMENT)
    assert response.status_code == 202
    run = MailboxPass.objects.get()
    assert (run.mailbox, run.state, run.trigger, run.requested_by) == (
        mailbox,
        "queued",
        "manual",
        alice,
    )
    assert queued == [(mailbox.pk, run.pk)]
    text = page(response)
    assert text.strip().startswith(f'<div id="fetch-status-{mailbox.pk}"')
    assert f'data-poll="/reports/mailboxes/{mailbox.pk}/passes/{run.pk}/"' in text
    assert "Fetch queued" in text and "<html" not in text


def test_fetch_now_is_refused_while_a_pass_is_going(alice, acme, queued):
    mailbox = make_mailbox(acme)
    client = client_for(alice)
    waiting = MailboxPass.objects.create(mailbox=mailbox)
    response = client.post(f"/reports/mailboxes/{mailbox.pk}/fetch/", **FRAGMENT)
    assert response.status_code == 429
    assert "already queued" in page(response)
    assert f"/passes/{waiting.pk}/" in page(response)  # the page follows that one instead
    without_script = client.post(f"/reports/mailboxes/{mailbox.pk}/fetch/", follow=True)
    assert "already queued" in page(without_script)

    MailboxPass.objects.filter(pk=waiting.pk).update(state="running")
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=timezone.now() + timedelta(minutes=5))
    response = client.post(f"/reports/mailboxes/{mailbox.pk}/fetch/", **FRAGMENT)
    assert response.status_code == 429 and "running now" in page(response)
    assert MailboxPass.objects.count() == 1 and not queued


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_lost_pass_does_not_block_fetch_now(alice, acme, queued, state):
    mailbox = make_mailbox(acme)
    lost = MailboxPass.objects.create(mailbox=mailbox, state=state)
    # Queued 11 minutes ago and never started; or running, but its lease ran out.
    MailboxPass.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    response = client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/fetch/", **FRAGMENT)
    assert response.status_code == 202
    assert MailboxPass.objects.count() == 2


def progress(client, run) -> str:
    response = client.get(f"/reports/mailboxes/{run.mailbox_id}/passes/{run.pk}/", **FRAGMENT)
    assert response.status_code == 200
    return page(response)


def test_the_progress_partial_follows_the_pass(victor, acme):
    mailbox = make_mailbox(acme)
    client = client_for(victor)  # a viewer may watch
    run = MailboxPass.objects.create(mailbox=mailbox, requested_by=victor)
    assert "Fetch queued" in progress(client, run) and "data-poll" in progress(client, run)

    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=timezone.now() + timedelta(minutes=5))
    run.state = MailboxPass.State.RUNNING
    run.save()
    assert "Connecting and looking for new messages" in progress(client, run)
    run.total, run.fetched, run.imported, run.duplicates = 120, 50, 48, 2
    run.save()
    text = progress(client, run)
    assert "Fetching: 50 of 120 messages (48 imported, 2 duplicates, 0 invalid)" in text
    assert "data-poll" in text

    run.state, run.fetched, run.imported, run.invalid = "done", 120, 117, 1
    run.save()
    text = progress(client, run)
    assert "Done: 120 of 120 new messages fetched, 117 imported, 2 duplicates, 1 invalid" in text
    assert "data-poll" not in text

    run.state, run.error = "failed", "imap.acme.example refused LOGIN: [AUTHENTICATIONFAILED]"
    run.save()
    text = progress(client, run)
    assert "The fetch failed: imap.acme.example refused LOGIN" in text and "data-poll" not in text

    run.state = "skipped"
    run.save()
    assert "another pass over this mailbox was running" in progress(client, run)


def test_the_progress_partial_gives_up_on_a_lost_pass(alice, acme):
    mailbox = make_mailbox(acme)
    client = client_for(alice)
    run = MailboxPass.objects.create(mailbox=mailbox)
    MailboxPass.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    text = progress(client, run)
    assert "is the background worker running?" in text and "data-poll" not in text

    MailboxPass.objects.filter(pk=run.pk).update(state="running", started_at=timezone.now())
    text = progress(client, run)  # running, but nobody holds the mailbox's lease
    assert "stopped without finishing" in text and "data-poll" not in text
