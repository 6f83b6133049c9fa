"""The probes on the pages and in the history: the mail servers section, the certificate filter,
the mail access hosts on the domain form, server change events and the alerts they make."""

from datetime import timedelta

import pytest
from django.utils import timezone

from domains import alerts, changes
from domains.models import AlertChannel, ChannelKind, Domain, DomainEvent, EventKind
from tests.conftest import client_for
from tests.domains.test_pages import add_run


def server(host="mx.acme.example", *, days=60, versions=("TLSv1.2", "TLSv1.3"), **extra):
    not_after = (timezone.now() + timedelta(days=days, hours=1)).isoformat()
    row = {
        "host": host,
        "address": "192.0.2.25",
        "port": 25,
        "service": "smtp",
        "tls_mode": "starttls",
        "probed_at": timezone.now().isoformat(),
        "reachable": True,
        "reach": "ok",
        "error": "",
        "starttls": True,
        "tls_version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "tls_versions": list(versions),
        "certificate": {
            "subject": f"CN={host}",
            "issuer": "CN=Example CA",
            "not_after": not_after,
            "names": [host],
            "trusted": True,
            "name_matches": True,
            "key": "EC 256",
            "signature_hash": "sha256",
        },
        "dane": "match",
        "dane_detail": "",
        "plaintext_auth": False,
        "open_relay": False,
        "banner": host,
    }
    row.update(extra)
    return row


def smtp(*rows) -> dict:
    return {"smtp": {"status": "pass", "score": 100, "applicable": True, "servers": list(rows)}}


def test_the_domain_page_shows_the_mail_servers(alice, acme_domain):
    add_run(
        acme_domain,
        categories=smtp(
            server(days=9),
            server(
                "mx2.acme.example",
                versions=("TLSv1", "TLSv1.2"),
                plaintext_auth=True,
                open_relay=True,
                dane="mismatch",
            ),
            server("mx3.acme.example", reachable=False, reach="no_greeting", certificate=None),
        ),
    )
    page = client_for(alice).get(f"/domains/{acme_domain.pk}/").content.decode()
    section = page[page.index('id="servers-title"') : page.index('id="findings-title"')]
    assert "mx.acme.example" in section and "192.0.2.25" in section
    assert "CN=mx.acme.example" in section and "issued by CN=Example CA" in section
    assert "9 days left" in section
    assert 'class="tls-version outdated">TLSv1<' in section
    assert "open relay" in section and "exposed" in section and "mismatch" in section
    assert "no greeting (timeout)" in section


def test_the_list_filters_on_expiring_certificates(alice, acme):
    soon = Domain.objects.create(organization=acme, name="soon.example")
    fine = Domain.objects.create(organization=acme, name="fine.example")
    gone = Domain.objects.create(organization=acme, name="gone.example")
    add_run(soon, findings=[("imap.cert_expiring", "medium", "IMAP certificate expires")])
    add_run(fine, findings=[("smtp.tls_outdated", "medium", "old TLS")])
    add_run(gone, findings=[("smtp.cert_expired", "low", "expired")])
    page = client_for(alice).get("/domains/?cert=expiring").content.decode()
    assert "soon.example" in page and "gone.example" in page
    assert "fine.example" not in page
    assert "Certificate expiring or expired" in page


def test_mail_access_hosts_on_the_form(bob, acme_domain):
    client = client_for(bob)
    response = client.post(
        f"/domains/{acme_domain.pk}/edit/",
        {
            "check_interval": "3600",
            "probe_interval": str(6 * 3600),
            "mail_access_hosts": "Mail.Acme.Example\nimap.acme.example:993\n\nmail.acme.example",
        },
    )
    assert response.status_code == 302
    acme_domain.refresh_from_db()
    assert acme_domain.mail_access_hosts == ["mail.acme.example", "imap.acme.example:993"]
    assert acme_domain.probe_interval == timedelta(hours=6)
    page = client.get(f"/domains/{acme_domain.pk}/edit/").content.decode()
    assert "mail.acme.example\nimap.acme.example:993" in page


@pytest.mark.parametrize(
    ("hosts", "error"),
    [
        ("mail.acme.example:2525", "does not say which service"),
        ("192.0.2.1", "an IP address cannot be a mail access host"),
        ("192.0.2.1:993", "an IP address cannot be a mail access host"),
        ("[2001:db8::1]:993", "an IP address cannot be a mail access host"),
        ("2001:db8::1", "an IP address cannot be a mail access host"),
        ("\n".join(f"h{i}.acme.example" for i in range(21)), "At most 20"),
    ],
)
def test_bad_mail_access_hosts_are_refused(bob, acme_domain, hosts, error):
    response = client_for(bob).post(
        f"/domains/{acme_domain.pk}/edit/", {"check_interval": "3600", "mail_access_hosts": hosts}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    acme_domain.refresh_from_db()
    assert acme_domain.mail_access_hosts == []


def test_a_new_certificate_is_a_server_change_a_silent_server_is_not(acme_domain):
    before = add_run(acme_domain, days_ago=1, categories=smtp(server(), server("mx2.acme.example")))
    renewed = server(days=90)
    after = add_run(
        acme_domain,
        categories=smtp(renewed, server("mx2.acme.example", reachable=False, reach="timeout")),
    )
    events = changes.compare(before, after)
    assert [e.kind for e in events] == [EventKind.SERVER_CHANGED]
    assert (
        events[0].summary == "SMTP server mx.acme.example (192.0.2.25) port 25: certificate changed"
    )
    assert (
        events[0].data["after"]["certificate"]["not_after"] == renewed["certificate"]["not_after"]
    )
    assert changes.compare(after, add_run(acme_domain, categories=after.categories)) == []


def test_an_expiring_certificate_alerts_though_it_is_not_high(acme, acme_domain):
    AlertChannel.objects.create(organization=acme, kind=ChannelKind.EMAIL, name="ops", target="o@x")
    same = smtp(server())
    before = add_run(acme_domain, days_ago=1, categories=same)
    after = add_run(
        acme_domain,
        categories=same,
        findings=[
            ("smtp.cert_expiring", "low", "expires", "mx port 25: expires on X", "renew"),
            ("smtp.tls_outdated", "medium", "old TLS"),
        ],
    )
    events = DomainEvent.objects.bulk_create(changes.compare(before, after))
    deliveries = alerts.notify(events)
    assert len(deliveries) == 1
    alerted = [e["data"].get("finding", e["kind"]) for e in deliveries[0].payload["events"]]
    assert alerted == ["smtp.cert_expiring"]  # the medium finding waits for the page
