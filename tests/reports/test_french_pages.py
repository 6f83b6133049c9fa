"""The reports pages in French for a user who chose French (Profile.language, copied into the
session at sign-in): French words and French numbers on every page, the English gone; the
command line and its JSON stay English whatever language is active."""

import html
import io
import json
import re
from datetime import date
from pathlib import Path

import pytest
from django.core.files.uploadhandler import SkipFile
from django.core.management import call_command
from django.utils import translation

from domains.models import Domain
from mailsec.models import Profile
from reports import forms, ingest, uploads
from reports.models import AggregateReport, InputSource
from reports.senders.report import senders_view
from tests.conftest import client_for
from tests.reports.test_mailbox_pages import make_mailbox
from tests.reports.test_senders import ALL_TIME, example, nameservers  # noqa: F401  (fixtures)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
TLS = FIXTURES / "smtp_tls" / "cryinc__google.json"  # foo-bar.io
FAILURE = FIXTURES / "forensic" / "mailauth__arf-003-auth-failure-bodyhash.eml"  # example.net
NBSP = "\xa0"


def french_client(user):
    Profile.objects.update_or_create(user=user, defaults={"language": "fr"})
    return client_for(user)


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    text = response.content.decode()
    assert '<html lang="fr"' in text
    return text


def visible(text: str) -> str:
    """The page's words (not its markup, scripts or attributes), spaces collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    # Not \s: it would take the non-breaking spaces French writes before ":" and "%".
    return html.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", text)))


def imported(team, path: Path) -> int:
    [outcome] = ingest.ingest_input(
        str(path), path.name, via=InputSource.COMMAND, organization=team
    )
    assert outcome.status == "imported", outcome.error
    return outcome.report_pk


@pytest.fixture
def fr(alice):
    """Alice, owner of Acme, who chose French."""
    return french_client(alice)


def test_the_index_and_an_aggregate_report_in_french(fr, example):  # noqa: F811
    index = visible(page(fr.get("/reports/")))
    for french in (
        "Rapports",
        "Téléverser des rapports",
        "Boîtes aux lettres",
        "Tous les domaines",
    ):
        assert french in index
    assert "Conformité DMARC" in index and "Plus récents d\u2019abord" in index
    assert "3 rapports." in index
    for english in ("Upload reports", "All domains", "Newest first", "Reporter"):
        assert english not in index

    report = AggregateReport.objects.get(domain="example.com", message_count=3047)
    detail = visible(page(fr.get(f"/reports/aggregate/{report.pk}/")))
    assert "Politique publiée" in detail and "Identifiant du rapport" in detail
    # 3047 messages in 20 records, grouped as French writes numbers
    assert f"3{NBSP}047 en 20 enregistrements" in detail
    assert "Tous les rapports de example.com" in detail
    for english in ("Policy published", "Report ID", "most messages first", "records;"):
        assert english not in detail


def test_a_domains_reports_in_french(fr, example):  # noqa: F811
    text = visible(page(fr.get(f"/reports/domain/{example.pk}/", ALL_TIME)))
    assert "Rapports agrégés DMARC" in text and "Expéditeurs de example.com" in text
    assert "Rapports d\u2019échec" in text and "Aucun reçu pour l\u2019instant." in text
    # the custom range's dates the French way, in the heading and the chart
    assert "Du 01/01/2020 au 31/12/2024" in text
    assert "Messages par jour de example.com, du 01/01/2020 au 31/12/2024" in text
    for english in ("DMARC aggregate reports", "Failure reports", "None received yet", " to "):
        assert english not in text


def test_the_senders_and_one_sender_in_french(fr, example):  # noqa: F811
    page_html = page(fr.get(f"/reports/domain/{example.pk}/senders/", ALL_TIME))
    [advice] = re.findall(r"data-recommendation>(.*?)</p>", page_html, re.S)
    advice = html.unescape(advice)
    assert advice == (
        f"Passez à p=quarantine{NBSP}: 99,7{NBSP}% de vos messages sont conformes DMARC. "
        "10 messages en échec viennent d\u2019expéditeurs que personne n\u2019a "
        f"marqués{NBSP}: marquez ceux qui sont à vous."
    )
    text = visible(page_html)
    assert "Prêt pour une politique plus stricte" in text and "Classement" in text
    assert "Autorisé" in text and "Pas à nous" in text
    for english in ("Move to", "Policy readiness", "Classification", "Authorised", "Not ours"):
        assert english not in text
    # The stable English beside it: the page's advice is a translation, not what is stored.
    view = senders_view(example, *(date.fromisoformat(ALL_TIME[k]) for k in ("since", "until")))
    assert view.readiness.recommendation.startswith("Move to p=quarantine: 99.7% of your mail")

    key = "service:Amazon SES"
    one = visible(
        page(fr.get(f"/reports/domain/{example.pk}/senders/one/", ALL_TIME | {"sender": key}))
    )
    assert "Amazon SES" in one and "Jour par jour" in one and "Sur cette période" in one
    assert "13/06/2024" in one  # the day of the nice-input report, in French
    assert "Messages de Amazon SES par jour" in one
    for english in ("Day by day", "In this range", "Reverse DNS", "2024-06-13"):
        assert english not in one


def test_tls_pages_in_french(fr, acme, example):  # noqa: F811
    Domain.objects.create(organization=acme, name="foo-bar.io")
    pk = imported(acme, TLS)
    detail = visible(page(fr.get(f"/reports/tls/{pk}/")))
    assert "Rapport SMTP TLS" in detail and "Identifiant du rapport" in detail
    assert re.search(r"réussies : [\d\u00a0]+, en échec : [\d\u00a0]+", detail.replace(NBSP, " "))
    assert "Politique" in detail
    for english in ("SMTP TLS report", "Report ID", "successful", "Sessions, "):
        assert english not in detail

    domain = Domain.objects.get(name="foo-bar.io")
    over_time = visible(page(fr.get(f"/reports/domain/{domain.pk}/tls/", ALL_TIME)))
    assert "Rapports SMTP TLS" in over_time and "Par serveur MX" in over_time
    assert "Sessions réussies" in over_time and "Types d\u2019échec" in over_time
    assert "Sessions SMTP TLS par jour vers foo-bar.io" in over_time
    for english in ("By MX host", "Failure types", "Receiving MTAs", "successful, "):
        assert english not in over_time


def test_a_failure_report_in_french(fr, acme):
    Domain.objects.create(organization=acme, name="example.net")
    pk = imported(acme, FAILURE)
    text = visible(page(fr.get(f"/reports/failure/{pk}/")))
    assert "Rapport d\u2019échec" in text and "Ce qui a échoué" in text
    assert "En-têtes du message en échec" in text and "Échec d\u2019authentification" in text
    for english in ("Failure report", "What failed", "Headers of the failed message"):
        assert english not in text


def test_uploading_in_french(fr, alice, acme):
    form = visible(page(fr.get("/reports/upload/")))
    assert "Fichiers de rapports" in form and "Téléverser" in form
    assert "Jusqu\u2019à 100 fichiers et 100\xa0Mio par envoi." in form  # French units
    for english in ("Report files", "Upload reports", "per upload"):
        assert english not in form

    too_large = forms.CappedUploadHandler(limit=1024 * 1024)
    too_large.file_name = "huge.xml"
    with translation.override("fr"), pytest.raises(SkipFile):
        too_large.receive_data_chunk(b"x" * 2 * 1024 * 1024, 0)
    assert too_large.oversized == [("huge.xml", "Larger than 1\xa0MB: not read.")]  # English
    upload = uploads.create(acme, alice, [], too_large.oversized)
    status = visible(page(fr.get(f"/reports/upload/{upload.pk}/")))
    assert "Envoi du" in status and "1 fichier lu" in status
    assert "0 importé, 0 doublon, 1 invalide" in status
    assert "Plus de 1\xa0MB\xa0: non lu." in status  # shown in French
    assert "Retour aux rapports" in status
    for english in ("Upload of", "file read", "Back to the reports"):
        assert english not in status


def test_mailboxes_in_french(fr, acme):
    make_mailbox(acme, protocol="pop3", port=995, read_only=True, interval_minutes=15)
    text = visible(page(fr.get("/reports/mailboxes/")))
    assert "Boîtes aux lettres de rapports" in text and "Relever maintenant" in text
    assert "toutes les 15 minutes" in text and "Prochaine relève" in text
    assert "lecture seule" in text and "Heures en UTC" in text
    for english in ("Report mailboxes", "Fetch now", "Next poll", "every 15 minutes"):
        assert english not in text
    form = visible(page(fr.get("/reports/mailboxes/add/")))
    assert "Ajouter une boîte aux lettres de rapports" in form and "Mot de passe" in form
    assert "Dossiers (IMAP seulement)" in form and "Chiffrement" in form
    for english in ("Add a report mailbox", "Password", "Folders (IMAP only)", "Encryption"):
        assert english not in form


def test_a_french_form_error(fr):
    response = fr.post(
        "/reports/mailboxes/add/",
        {"name": "x", "host": "https://imap.example/", "tls_mode": "implicit", "username": "u",
         "password": "p", "folder": "INBOX", "interval_minutes": 5},
    )  # fmt: skip
    assert "Saisissez seulement le nom du serveur, pas une URL ni un chemin." in page(response)


def test_the_senders_command_stays_english_when_french_is_active(example):  # noqa: F811
    out = io.StringIO()
    with translation.override("fr"):
        call_command(
            "senders", "example.com", "--json", "--since", "2020-01-01", "--until", "2024-12-31",
            stdout=out,
        )  # fmt: skip
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    readiness = lines[-1]["readiness"]
    assert readiness["recommendation"].startswith(
        "Move to p=quarantine: 99.7% of your mail passes DMARC. 10 failing messages come from"
    )
    assert {s["classification"] for s in lines[:-1]} <= {
        "authorised", "forwarded", "failing_authorised", "suspicious"
    }  # fmt: skip
    assert "Passez" not in out.getvalue() and "\xa0%" not in out.getvalue()


def test_a_rate_is_rounded_not_cut():
    """99.66% is 99.7%, not 99.6% (Django's number_format cuts a float's decimals)."""
    from mailsec.templatetags.localized import percent

    with translation.override("en"):
        assert (percent(99.66), percent(0.05)) == ("99.7%", "0.1%")
    with translation.override("fr"):
        assert percent(99.66) == f"99,7{NBSP}%"
