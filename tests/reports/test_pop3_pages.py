"""The report mailbox pages for a POP3 mailbox: adding one through the form (the port by
protocol and TLS mode, the folders left out), what its card says, the connection test against
dovecot's POP3, "fetch now" and the facts fragment after a pass; and adding one in Chromium,
where the folder fields go away once POP3 is chosen."""

import logging

import pytest
from playwright.sync_api import expect

from reports import fetch, secrets
from reports.models import Mailbox, MailboxPass
from tests.conftest import client_for
from tests.reports.test_fetch import fill
from tests.reports.test_mailbox_pages import (  # noqa: F401  (encryption_key: autouse)
    FRAGMENT,
    encryption_key,
    form_data,
    make_mailbox,
    page,
    shows,
)
from tests.test_browser import chromium_page


def pop3_form(**changes) -> dict:
    defaults = {
        "protocol": "pop3", "host": "pop.acme.example", "port": "", "folder": "",
        "processed_folder": "", "invalid_folder": "",
    }  # fmt: skip
    return form_data(**(defaults | changes))


def test_the_form_offers_pop3(alice):
    text = page(client_for(alice).get("/reports/mailboxes/add/"))
    assert '<option value="pop3">POP3</option>' in text
    assert "995 (TLS) or 110 for POP3" in text and "IMAP only." in text


@pytest.mark.parametrize(
    ("protocol", "mode", "port"),
    [("pop3", "implicit", 995), ("pop3", "starttls", 110), ("imap", "implicit", 993),
     ("imap", "starttls", 143)],
)  # fmt: skip
def test_a_blank_port_is_the_usual_one(alice, acme, protocol, mode, port):
    data = pop3_form(protocol=protocol, tls_mode=mode) | {"folder": "INBOX"}
    response = client_for(alice).post("/reports/mailboxes/add/", data)
    assert response.status_code == 302, page(response)
    assert Mailbox.objects.get().port == port


def test_owner_adds_a_pop3_mailbox(alice, acme):
    client = client_for(alice)
    response = client.post("/reports/mailboxes/add/", pop3_form(read_only="on"))
    assert response.status_code == 302, page(response)
    mailbox = Mailbox.objects.get(organization=acme)
    assert (mailbox.protocol, mailbox.host, mailbox.port, mailbox.tls_mode) == (
        "pop3", "pop.acme.example", 995, "implicit",
    )  # fmt: skip
    assert mailbox.folder == "INBOX" and mailbox.read_only  # no folders over POP3
    assert secrets.decrypt(mailbox.password_encrypted) == form_data()["password"]
    listing = page(client.get("/reports/mailboxes/"))
    assert "POP3 at <code>pop.acme.example</code> port 995, TLS" in listing
    assert "read-only: messages stay on the server" in listing and "Folders" not in listing
    assert not shows(listing, form_data()["password"])

    # The folder checks are for IMAP: a POP3 mailbox has no source folder to clash with.
    edit = client.post(
        f"/reports/mailboxes/{mailbox.pk}/edit/",
        pop3_form(password="", processed_folder="INBOX", port="1995"),
    )
    assert edit.status_code == 302, page(edit)
    mailbox.refresh_from_db()
    assert (mailbox.port, mailbox.read_only) == (1995, False)
    assert "deleted from the server once stored" in page(client.get("/reports/mailboxes/"))


@pytest.mark.parametrize(
    ("protocol", "port", "error"),
    [("pop3", "993", "993 is the usual IMAP port: for POP3 use 995 (TLS) or 110"),
     ("pop3", "143", "143 is the usual IMAP port"),
     ("imap", "110", "110 is the usual POP3 port: for IMAP use 993 (TLS) or 143")],
)  # fmt: skip
def test_the_other_protocols_port_is_refused(alice, acme, protocol, port, error):
    data = pop3_form(protocol=protocol, port=port) | {"folder": "INBOX"}
    response = client_for(alice).post("/reports/mailboxes/add/", data)
    assert error in page(response) and not Mailbox.objects.exists()


def test_pop3_plaintext_needs_the_explicit_checkbox(alice, acme):
    client = client_for(alice)
    refused = client.post("/reports/mailboxes/add/", pop3_form(tls_mode="plain"))
    assert "tick this box to allow it" in page(refused) and not Mailbox.objects.exists()
    client.post("/reports/mailboxes/add/", pop3_form(tls_mode="plain", allow_plaintext="on"))
    assert Mailbox.objects.get().port == 110


def test_a_form_without_the_protocol_is_imap(alice, acme):
    data = {k: v for k, v in form_data().items() if k != "protocol"}
    response = client_for(alice).post("/reports/mailboxes/add/", data)
    assert response.status_code == 302, page(response)
    assert Mailbox.objects.get().protocol == "imap"


def test_imap_still_needs_a_source_folder(alice, acme):
    response = client_for(alice).post("/reports/mailboxes/add/", pop3_form(protocol="imap"))
    assert "This field is required." in page(response) and not Mailbox.objects.exists()


def dovecot_pop3_mailbox(organization, account, **fields) -> Mailbox:
    defaults = {
        "protocol": "pop3", "host": "127.0.0.1", "port": account.server.pop3s_port,
        "username": account.user, "password": account.password,
    }  # fmt: skip
    return make_mailbox(organization, **(defaults | fields))


def test_connection_test_of_a_pop3_mailbox(alice, acme, imap_account, caplog):
    caplog.set_level(logging.DEBUG)
    fill(imap_account)
    mailbox = dovecot_pop3_mailbox(acme, imap_account)
    text = page(client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/test/"))
    assert "Every step passed" in text and "over POP3" in text
    assert "Nothing is retrieved or deleted" in text
    for name in ("DNS", "TCP", "TLS", "Login", "Messages"):
        assert f'<span aria-hidden="true">✓</span> {name}<' in text, name
    assert text.count("✓") == 5 and "✗" not in text
    assert f"logged in as {imap_account.user} (USER/PASS)" in text
    assert "12 messages (" in text
    assert len(imap_account.messages()) == 12  # nothing deleted
    assert not shows(text, imap_account.password) and imap_account.password not in caplog.text


def test_connection_test_of_a_pop3_mailbox_with_a_wrong_password(alice, acme, imap_account):
    mailbox = dovecot_pop3_mailbox(acme, imap_account, password="wrong-pw")
    text = page(client_for(alice).post(f"/reports/mailboxes/{mailbox.pk}/test/"))
    assert "The test failed at the step “Login”" in text
    assert f"login refused for {imap_account.user}" in text and 'data-stage="login"' in text


def test_fetch_now_and_the_facts_after_a_pop3_pass(alice, acme, imap_account):
    fill(imap_account)
    mailbox = dovecot_pop3_mailbox(acme, imap_account)
    client = client_for(alice)
    response = client.post(f"/reports/mailboxes/{mailbox.pk}/fetch/", **FRAGMENT)
    assert response.status_code == 202 and "Fetch queued" in page(response)
    queued = MailboxPass.objects.get(mailbox=mailbox)  # its task is sent at commit: none here
    run = fetch.run_pass(mailbox.pk, queued.pk)  # what the worker does
    assert run.state == "done"
    progress = page(client.get(f"/reports/mailboxes/{mailbox.pk}/passes/{run.pk}/", **FRAGMENT))
    assert f'data-refresh="/reports/mailboxes/{mailbox.pk}/facts/"' in progress
    facts = page(client.get(f"/reports/mailboxes/{mailbox.pk}/facts/", **FRAGMENT))
    assert "12 messages fetched of 12 new" in facts
    assert "deleted from the server once stored" in facts
    assert imap_account.messages() == []


@pytest.mark.django_db(transaction=True)
def test_adding_a_pop3_mailbox_in_a_browser(live_server, alice, acme):
    with chromium_page() as browser:
        browser.goto(f"{live_server.url}/login/")
        browser.fill("input[name=username]", "alice")
        browser.fill("input[name=password]", "correct horse 42")
        browser.click("main button[type=submit]")
        browser.goto(f"{live_server.url}/reports/mailboxes/add/")
        folders = browser.locator("fieldset[data-imap-only]")
        expect(folders).to_be_visible()
        browser.select_option("select[name=protocol]", "pop3")
        expect(folders).to_be_hidden()  # no folders over POP3
        expect(browser.locator("input[name=read_only]")).to_be_visible()
        browser.fill("input[name=name]", "Appliance")
        browser.fill("input[name=host]", "pop.acme.example")
        browser.fill("input[name=username]", "dmarc@acme.example")
        browser.fill("input[name=password]", "pop-secret")
        browser.click("main button[type=submit]:text-is('Add mailbox')")
        card = browser.locator("section.mailbox")
        expect(card).to_contain_text("POP3 at pop.acme.example port 995, TLS")
        expect(card).to_contain_text("deleted from the server once stored")
    mailbox = Mailbox.objects.get(organization=acme)
    assert (mailbox.protocol, mailbox.port, mailbox.folder) == ("pop3", 995, "INBOX")
