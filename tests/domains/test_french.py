"""The domain pages and the alert e-mails in French and English (issue 18): a user whose profile
says French reads French, numbers grouped the French way; an e-mail channel's alerts are
written in the channel's language, whatever the language of the process sending them."""

from django.utils import translation

from domains.alerts import deliver, notify, send_test
from domains.models import AlertChannel, ChannelKind, DomainEvent, EventKind
from mailsec.models import Profile
from tests.conftest import client_for
from tests.domains.test_alerts import email_channel, grade_drop, make_event, smtp  # noqa: F401
from tests.domains.test_domain_headline import headline, rollup
from tests.domains.test_pages import NO_DMARC, NO_SPF, add_run

NBSP = "\xa0"
APOS = "\u2019"  # French writes an apostrophe so


def french(user):
    Profile.objects.update_or_create(user=user, defaults={"language": "fr"})
    return client_for(user)  # signing in copies the profile's language into the session


def test_the_domain_list_in_french(alice, acme_domain):
    add_run(acme_domain, score=40, grade="D", findings=[NO_SPF])
    page = french(alice).get("/domains/").content.decode()
    assert '<html lang="fr">' in page
    for words in ("Domaines", "Ajouter des domaines", "Chercher un domaine", "Toutes les notes"):
        assert words in page, words
    assert "Constat ouvert le plus grave" in page and ">critique</span>" in page
    assert "1 domaine" in page.replace(NBSP, " ")
    for english in ("Add domains", "Find a domain", "Any grade", "Worst open finding", "Grades"):
        assert english not in page, english


def test_the_same_list_in_english(alice, acme_domain):
    add_run(acme_domain, score=40, grade="D", findings=[NO_SPF])
    page = client_for(alice).get("/domains/").content.decode()
    assert "Add domains" in page and "Worst open finding" in page and ">critical</span>" in page
    assert "Ajouter des domaines" not in page


def test_add_edit_and_delete_pages_in_french(alice, acme_domain):
    client = french(alice)
    add = client.get("/domains/add/").content.decode()
    assert "Ajouter des domaines à Acme" in add and "Noms de domaine" in add
    assert "Domain names" not in add and "Cancel" not in add and "Annuler" in add
    refused = client.post("/domains/add/", {"names": ""}).content.decode()
    assert "Saisissez au moins un nom de domaine" in refused
    some = client.post("/domains/add/", {"names": "new.example\nacme.example"}).content.decode()
    assert "1 domaine ajouté" in some and f"Non ajoutés{NBSP}: 1" in some
    assert "acme.example est déjà surveillé par cette équipe." in some
    assert "Added 1 domain" not in some and "Not added" not in some

    edit = client.get(f"/domains/{acme_domain.pk}/edit/").content.decode()
    assert "Modifier acme.example" in edit and "Enregistrer" in edit
    assert "Toutes les 6 heures" in edit and "Sélecteurs DKIM supplémentaires" in edit
    assert "Every 6 hours" not in edit and "Extra DKIM selectors" not in edit
    saved = client.post(
        f"/domains/{acme_domain.pk}/edit/", {"check_interval": "900", "notes": ""}, follow=True
    )
    assert "acme.example enregistré." in saved.content.decode()

    delete = client.get(f"/domains/{acme_domain.pk}/delete/").content.decode()
    assert f"Supprimer acme.example{NBSP}?" in delete and f"C{APOS}est irréversible." in delete
    assert "This cannot be undone" not in delete
    gone = client.post(f"/domains/{acme_domain.pk}/delete/", follow=True).content.decode()
    assert "acme.example et son historique sont supprimés." in gone


def test_the_domain_page_in_french_with_french_numbers(alice, acme_domain):
    add_run(acme_domain, score=40, grade="D", findings=[NO_SPF, NO_DMARC])
    rollup("acme.example", 1, "192.0.2.1", 12000, 11000)
    rollup("acme.example", 2, "192.0.2.2", 345, 345)
    page = french(alice).get(f"/domains/{acme_domain.pk}/").content.decode()
    assert f'<dd data-headline="messages">12{NBSP}345</dd>' in page
    # 11345 of 12345 is 91.899...%: rounded to one decimal, as the English page shows it
    assert headline(page)["dmarc-rate"] == "91,9 %" and f"91,9{NBSP}%" in page
    assert headline(page)["sources"] == "2 adresses IP"
    for words in (
        "Vérifier maintenant",
        "Constats",
        "Rapports DMARC",
        "30 derniers jours",
        "Score <b>40</b>",
        "sur 100",
        "Dernière vérification le",
        "Paramètres",
        "toutes les 6 heures",
        ">critique</span>",
        ">élevée</span>",
        'data-copied="Copié"',
    ):
        assert words in page, words
    for english in ("Check now", "Findings", "DMARC reports", "Last checked", "every 6 hours"):
        assert english not in page, english


def test_a_french_channel_gets_french_e_mail_and_an_english_one_english(
    smtp,  # noqa: F811
    acme,
    alice,
    acme_domain,
    settings,
):
    settings.MAILSEC_SITE_URL = "https://mailsec.acme.test"
    run = add_run(acme_domain, score=40, grade="D")
    email_channel(acme, "ops@acme.test")  # English, the default
    AlertChannel.objects.create(
        organization=acme,
        kind=ChannelKind.EMAIL,
        name="équipe",
        target="dsi@acme.test",
        language="fr",
    )
    events = [
        grade_drop(run),
        make_event(run, EventKind.FINDING_APPEARED, "critical", summary="No DMARC record"),
        make_event(
            run,
            EventKind.RECORD_CHANGED,
            summary="MX records changed",
            data={"category": "mx", "before": ["10 a."], "after": ["10 b."]},
        ),
    ]
    with translation.override("fr"):  # the sender's language decides nothing
        deliveries = notify(events)
    for delivery in deliveries:
        deliver(delivery.pk)
    received = {m["To"]: m for m in smtp.messages()}
    english, french_mail = received["ops@acme.test"], received["dsi@acme.test"]

    assert english["Subject"].strip() == (
        "mailsec: acme.example grade B → D, 1 new finding, 1 record changed"
    )
    body = english.get_content()
    assert "mailsec saw 3 changes on the domains of Acme." in body
    assert "acme.example: Finding appeared (critical)" in body
    assert "MX records changed" in body and "was: 10 a." in body

    assert french_mail["Subject"].strip() == (
        f"mailsec{NBSP}: acme.example note B → D, 1 nouveau constat, 1 enregistrement modifié"
    )
    body = french_mail.get_content()
    assert "mailsec a constaté 3 changements sur les domaines de Acme." in body
    assert f"acme.example{NBSP}: Nouveau constat (critique)" in body
    assert "Enregistrements MX modifiés" in body and f"avant{NBSP}: 10 a." in body
    assert f"Envoyé à «{NBSP}équipe{NBSP}» par mailsec" in body
    for english_word in ("changes on the domains", "Finding appeared", "was:", "Sent to"):
        assert english_word not in body, english_word
    # The stored events stay English: the API and the webhooks read them.
    assert DomainEvent.objects.get(kind=EventKind.RECORD_CHANGED).summary == "MX records changed"


def test_a_test_alert_to_a_french_channel_is_french(smtp, acme):  # noqa: F811
    channel = AlertChannel.objects.create(
        organization=acme, kind=ChannelKind.EMAIL, name="dsi", target="dsi@acme.test", language="fr"
    )
    send_test(channel)
    [message] = smtp.messages()
    assert message["Subject"] == f"mailsec{NBSP}: alerte de test vers dsi"
    body = message.get_content()
    assert "Ceci est une alerte de test de mailsec" in body
    assert f"Note passée de B à D (un événement d{APOS}exemple" in body
    # the webhook body of the same delivery stays English
    assert channel.deliveries.get().payload["subject"] == "mailsec: test alert to dsi"


def test_a_new_channel_takes_the_language_of_whoever_adds_it(alice, acme):
    client = french(alice)
    response = client.post(
        "/settings/channels/add/",
        {"kind": "email", "name": "dsi", "target": "dsi@acme.test"},
    )
    assert response.status_code in (200, 302)
    assert AlertChannel.objects.get(name="dsi").language == "fr"


def test_the_timeline_says_what_changed_in_french(alice, acme_domain):
    from domains.changes import compare

    tested = {"spf": {"status": "fail", "records": {}}}
    before = add_run(acme_domain, days_ago=1, score=90, grade="A", categories=tested)
    after = add_run(acme_domain, score=40, grade="D", findings=[NO_SPF], categories=tested)
    for event in compare(before, after):
        event.save()
    stored = set(DomainEvent.objects.values_list("summary", flat=True))
    assert stored == {
        "Grade A → D (score 90 → 40)",
        "New critical finding: No SPF record (spf.missing)",
    }
    page = french(alice).get(f"/domains/{acme_domain.pk}/").content.decode()
    assert "Note A → D (score 90 → 40)" in page
    appeared = f"Nouveau constat (gravité critique){NBSP}: Aucun enregistrement SPF (spf.missing)"
    assert appeared in page
    assert "New critical finding" not in page and "Grade A → D" not in page
    Profile.objects.filter(user=alice).update(language="en")
    page = client_for(alice).get(f"/domains/{acme_domain.pk}/").content.decode()
    assert "New critical finding: No SPF record (spf.missing)" in page


def test_check_now_progress_in_french(alice, acme_domain):
    from django.utils import timezone

    from domains.models import ManualCheck

    manual = ManualCheck.objects.create(domain=acme_domain, user=alice, requested_at=timezone.now())
    url = f"/domains/{acme_domain.pk}/check/{manual.pk}/"
    client = french(alice)
    assert f"Vérification en file d{APOS}attente{NBSP}:" in client.get(url).content.decode()
    run = add_run(acme_domain, score=97, grade="A+")
    ManualCheck.objects.filter(pk=manual.pk).update(state="done", run=run)
    done = client.get(url).content.decode()
    assert (
        f'Vérifié{NBSP}: note <span class="grade grade-aplus" data-grade="A+">A+</span>, score 97.'
        in done
    )


def test_the_score_chart_in_french():
    from domains import charts
    from tests.domains.test_charts import END, START, SVG, at, parse, texts

    points = [charts.Point(at(d), 60, "C") for d in range(0, 90, 3)] + [charts.Point(at(90), None)]
    with translation.override("fr"):
        root = parse(charts.score_history(points, START, END))
    assert texts(root, "chart-x")[:3] == ["5 Jan", "19 Jan", "2 Fév"]
    assert root.findtext(f"{SVG}title") == "Historique du score"
    desc = root.findtext(f"{SVG}desc")
    assert desc.startswith("31 vérifications du 2025-01-")
    assert "dernier score 60 (note C)" in desc and "1 sans score possible." in desc


def test_a_digest_to_a_french_channel_and_a_webhook_in_english(acme, acme_domain):
    from datetime import timedelta

    from django.utils import timezone

    from domains.alerts import send_digests
    from domains.models import AlertDelivery, Domain
    from tests.domains.test_alerts import make_run, webhook_channel

    acme.alert_digest = True
    acme.save()
    webhook_channel(acme, "http://127.0.0.1:9/hook")
    AlertChannel.objects.create(
        organization=acme, kind=ChannelKind.EMAIL, name="dsi", target="dsi@acme.test", language="fr"
    )
    other = make_run(Domain.objects.create(organization=acme, name="acme-two.example"))
    now = timezone.now()
    grade_drop(make_run(acme_domain), at=now - timedelta(hours=3))
    make_event(other, EventKind.RECORD_CHANGED, at=now - timedelta(hours=2))
    with translation.override("fr"):
        assert send_digests(now) == 2
    subjects = dict(AlertDelivery.objects.values_list("channel__kind", "subject"))
    assert subjects == {
        "email": f"mailsec, résumé{NBSP}: 2 changements sur 2 domaines",
        "webhook": "mailsec digest: 2 changes on 2 domains",
    }
    hook = AlertDelivery.objects.get(channel__kind="webhook")
    assert hook.payload["subject"] == "mailsec digest: 2 changes on 2 domains"
    assert {e["summary"] for e in hook.payload["events"]} >= {"Grade dropped from B to D"}
