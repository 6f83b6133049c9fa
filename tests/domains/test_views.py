from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from domains.models import Domain
from tests.conftest import client_for

# --- adding ---------------------------------------------------------------------------------


def test_add_one_domain(alice, acme):
    response = client_for(alice).post("/domains/add/", {"names": "Example.COM."})
    assert response.status_code == 302
    domain = Domain.objects.get()
    assert (domain.organization, domain.name) == (acme, "example.com")
    assert domain.check_interval == timedelta(hours=6)


def test_idn_is_stored_as_punycode_and_shown_in_unicode(alice, acme):
    client = client_for(alice)
    client.post("/domains/add/", {"names": "Bücher.de"})
    domain = Domain.objects.get()
    assert domain.name == "xn--bcher-kva.de"
    page = client.get("/domains/").content.decode()
    assert "bücher.de" in page
    detail = client.get(f"/domains/{domain.pk}/").content.decode()
    assert "<h1>bücher.de" in detail


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("192.0.2.7", "is an IP address"),
        ("[2001:db8::25]", "is an IP address"),
        ("localhost", "localhost is not a mail domain"),
        ("intranet", "is a single label"),
        (".".join(["abc" * 20] * 5) + ".example", "at most 253"),  # 312 characters
        ("bad_label.example", "is invalid"),
        ("-dash.example", "is invalid"),
        ("x" * 64 + ".example", "at most 63"),
    ],
)
def test_single_add_shows_the_reason(alice, name, reason):
    response = client_for(alice).post("/domains/add/", {"names": name})
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not Domain.objects.exists()


def test_a_domain_already_in_the_team_is_refused(alice, acme_domain):
    response = client_for(alice).post("/domains/add/", {"names": "ACME.example."})
    assert "already monitored by this team" in response.content.decode()
    assert Domain.objects.count() == 1


def test_the_same_name_in_another_team_is_fine(olga, acme_domain):
    response = client_for(olga).post("/domains/add/", {"names": "acme.example"})
    assert response.status_code == 302
    assert Domain.objects.filter(name="acme.example").count() == 2


def test_bulk_add_keeps_the_good_and_lists_the_bad(alice, acme, acme_domain):
    names = "\n".join(
        [
            "good-one.example",
            "",
            "# a comment line",
            "GOOD-TWO.example.",
            "192.0.2.1",
            "good-one.example",
            "acme.example",
            "münchen.example",
            "single",
        ]
    )
    response = client_for(alice).post("/domains/add/", {"names": names})
    assert response.status_code == 200
    assert set(acme.domains.values_list("name", flat=True)) == {
        "acme.example",
        "good-one.example",
        "good-two.example",
        "xn--mnchen-3ya.example",
    }
    rejected = response.context["result"].rejected
    assert [(r.line, r.text) for r in rejected] == [
        (5, "192.0.2.1"),
        (6, "good-one.example"),
        (7, "acme.example"),
        (9, "single"),
    ]
    page = response.content.decode()
    assert "Added 3 domains" in page
    assert "Listed twice (first on line 1)" in page
    assert "already monitored by this team" in page
    assert "is a single label" in page


def test_bulk_add_from_csv(alice, acme):
    csv = b"\xef\xbb\xbfdomain,notes\nalpha.example,main\n\n beta.example ,shop\nnot a domain,x\n"
    upload = SimpleUploadedFile("domains.csv", csv, content_type="text/csv")
    response = client_for(alice).post("/domains/add/", {"names": "", "csv_file": upload})
    assert response.status_code == 200
    assert sorted(acme.domains.values_list("name", flat=True)) == ["alpha.example", "beta.example"]
    rejected = response.context["result"].rejected
    assert [(r.line, r.text) for r in rejected] == [(5, "not a domain")]


def test_csv_that_is_not_text_is_refused(alice):
    upload = SimpleUploadedFile("domains.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff", "text/csv")
    response = client_for(alice).post("/domains/add/", {"csv_file": upload})
    assert response.status_code == 200
    assert "not UTF-8 text" in response.content.decode()
    assert not Domain.objects.exists()


def test_empty_add_is_an_error(alice):
    response = client_for(alice).post("/domains/add/", {"names": "\n  \n"})
    assert "Enter at least one domain name" in response.content.decode()


# --- editing and deleting -------------------------------------------------------------------


def test_edit_interval_notes_and_selectors(bob, acme_domain):
    client = client_for(bob)
    assert client.get(f"/domains/{acme_domain.pk}/edit/").status_code == 200
    response = client.post(
        f"/domains/{acme_domain.pk}/edit/",
        {"check_interval": "900", "notes": "the shop", "dkim_selectors": "Mailjet, s2048 mailjet"},
    )
    assert response.status_code == 302
    acme_domain.refresh_from_db()
    assert acme_domain.check_interval == timedelta(minutes=15)
    assert acme_domain.notes == "the shop"
    assert acme_domain.dkim_selectors == ["mailjet", "s2048"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"check_interval": "60"}, "Select a valid choice"),
        ({"check_interval": str(8 * 86400)}, "Select a valid choice"),
        ({"check_interval": "3600", "dkim_selectors": "ok bad/one"}, "not a valid DKIM selector"),
        ({"check_interval": "3600", "dkim_selectors": "s1._domainkey"}, "without ._domainkey"),
    ],
)
def test_edit_refuses_bad_values(bob, acme_domain, data, error):
    response = client_for(bob).post(f"/domains/{acme_domain.pk}/edit/", data)
    assert response.status_code == 200
    assert error in response.content.decode()
    acme_domain.refresh_from_db()
    assert acme_domain.check_interval == timedelta(hours=6)


def test_delete_asks_first(bob, acme_domain):
    client = client_for(bob)
    page = client.get(f"/domains/{acme_domain.pk}/delete/")
    assert "cannot be undone" in page.content.decode()
    assert Domain.objects.filter(pk=acme_domain.pk).exists()
    assert client.post(f"/domains/{acme_domain.pk}/delete/").status_code == 302
    assert not Domain.objects.filter(pk=acme_domain.pk).exists()


# --- tenant isolation and roles -------------------------------------------------------------

DOMAIN_PAGES = ["domains:detail", "domains:edit", "domains:delete"]


@pytest.mark.parametrize("page", DOMAIN_PAGES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_teams_domain_is_not_found(alice, globex_domain, page, method):
    url = reverse(page, args=[globex_domain.pk])
    response = getattr(client_for(alice), method)(url, {"check_interval": "900"})
    assert response.status_code == 404
    globex_domain.refresh_from_db()
    assert globex_domain.check_interval == timedelta(hours=6)


def test_another_teams_domain_is_not_listed(alice, acme_domain, globex_domain):
    page = client_for(alice).get("/domains/").content.decode()
    assert "acme.example" in page
    assert "globex.example" not in page


def test_a_user_without_a_team_sees_nothing(db, globex_domain):
    from tests.conftest import make_user

    loner = client_for(make_user("loner"))
    assert "not a member of any team" in loner.get("/domains/").content.decode()
    assert loner.get(f"/domains/{globex_domain.pk}/").status_code == 404
    assert loner.post("/domains/add/", {"names": "x.example"}).status_code == 404


def test_viewer_reads_but_cannot_change(victor, acme_domain):
    client = client_for(victor)
    assert client.get("/domains/").status_code == 200
    detail = client.get(f"/domains/{acme_domain.pk}/")
    assert detail.status_code == 200
    assert "Edit" not in detail.content.decode()
    assert client.get("/domains/add/").status_code == 403
    assert client.post("/domains/add/", {"names": "new.example"}).status_code == 403
    assert client.get(f"/domains/{acme_domain.pk}/edit/").status_code == 403
    response = client.post(f"/domains/{acme_domain.pk}/edit/", {"check_interval": "900"})
    assert response.status_code == 403
    assert client.post(f"/domains/{acme_domain.pk}/delete/").status_code == 403
    assert list(Domain.objects.values_list("name", "check_interval")) == [
        ("acme.example", timedelta(hours=6))
    ]


def test_member_of_two_teams_switches(alice, globex, acme_domain, globex_domain):
    from domains.models import Membership, Role

    Membership.objects.create(organization=globex, user=alice, role=Role.VIEWER)
    client = client_for(alice)
    assert "acme.example" in client.get("/domains/").content.decode()
    client.post("/team/switch/", {"organization": globex.pk})
    page = client.get("/domains/").content.decode()
    assert "globex.example" in page
    assert "acme.example" not in page
    # Her role follows the team: a viewer in Globex.
    assert client.post("/domains/add/", {"names": "x.example"}).status_code == 403
    assert client.post("/team/switch/", {"organization": 999999}).status_code == 404
