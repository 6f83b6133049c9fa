"""French beside English (issue 18): the catalogue is complete and compiles, it holds every
string of the source and no string the source lost, no template shows a word outside a
translation tag, and every page answers in both languages.

One template's lint: `.venv/bin/pytest tests/test_translations.py -k "lint and mailsec/"`, or
`.venv/bin/python -m tests.i18n_lint templates/mailsec/*.html`.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.test import Client

from tests import i18n_lint

REPO = Path(__file__).resolve().parent.parent
CATALOGUE = REPO / "locale" / "fr" / "LC_MESSAGES" / "django.po"
# printf-style (Django's blocktranslate and gettext with %) and str.format-style placeholders.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|(?<!%)%[sdif]|\{(\w*)\}")


def _key(entry: polib.POEntry) -> tuple[str, str, str]:
    return (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")


def _name(key: tuple[str, str, str]) -> str:
    context, msgid, plural = key
    return (f"[{context}] " if context else "") + repr(msgid) + (f" / {plural!r}" if plural else "")


def _report(title: str, keys) -> str:
    return f"{title}:\n" + "\n".join(f"  {_name(key)}" for key in sorted(keys))


@pytest.fixture(scope="module")
def committed() -> polib.POFile:
    return polib.pofile(str(CATALOGUE), wrapwidth=0)


# --- the catalogue as committed -----------------------------------------------------------


def test_every_entry_is_translated_and_none_is_fuzzy(committed):
    untranslated = [_key(e) for e in committed if not e.obsolete and not e.translated()]
    fuzzy = [_key(e) for e in committed if "fuzzy" in e.flags]
    obsolete = [_key(e) for e in committed.obsolete_entries()]
    problems = [
        _report("Untranslated (fill the msgstr)", untranslated) if untranslated else "",
        _report("Fuzzy (check the translation, then remove '#, fuzzy')", fuzzy) if fuzzy else "",
        _report("Obsolete (#~, remove them)", obsolete) if obsolete else "",
    ]
    assert not any(problems), "\n".join(p for p in problems if p)


def test_the_catalogue_compiles_with_gettexts_checks(tmp_path):
    """msgfmt's own checks: the header, and placeholders of entries flagged python-format."""
    result = subprocess.run(
        ["msgfmt", "--check-format", "--check-header", "-o", tmp_path / "django.mo", CATALOGUE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def _placeholders(text: str) -> set[str]:
    return {m.group(1) or m.group(2) or m.group(0) for m in PLACEHOLDER.finditer(text)}


def test_each_translation_keeps_the_placeholders_of_its_source(committed):
    """Beyond msgfmt (which checks only flagged entries): a translation names exactly the
    placeholders of its English, so a value is never lost nor asked for and missing."""
    wrong = []
    for entry in committed.translated_entries():
        if entry.msgid_plural:
            source = _placeholders(entry.msgid) | _placeholders(entry.msgid_plural)
            forms = [_placeholders(entry.msgstr_plural[n]) for n in sorted(entry.msgstr_plural)]
            # Each form names only the source's placeholders; the plural form names them all.
            if (
                any(form - source for form in forms)
                or _placeholders(entry.msgid_plural) - forms[-1]
            ):
                wrong.append(f"  {_name(_key(entry))}: {entry.msgstr_plural}")
        elif _placeholders(entry.msgid) != _placeholders(entry.msgstr):
            wrong.append(f"  {_name(_key(entry))}: {entry.msgstr!r}")
    assert not wrong, "Placeholders differ between English and French:\n" + "\n".join(wrong)


# --- makemessages, as `make messages` runs it -----------------------------------------------


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> polib.POFile:
    """The catalogue `make messages` would write, written into a copy of locale/: the project's
    other folders are linked into a scratch tree (makemessages writes beside the sources)."""
    tree = tmp_path_factory.mktemp("makemessages")
    for entry in REPO.iterdir():
        if entry.name not in {"locale", ".git"}:
            (tree / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "locale", tree / "locale")
    flags = subprocess.run(
        ["make", "-s", "--no-print-directory", "makemessages-args"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *shlex.split(flags), "--symlinks"],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return polib.pofile(str(tree / "locale" / "fr" / "LC_MESSAGES" / "django.po"), wrapwidth=0)


def test_the_catalogue_holds_every_string_of_the_source(committed, regenerated):
    new = {_key(e) for e in regenerated} - {_key(e) for e in committed if not e.obsolete}
    assert not new, _report(
        "Strings in the source but not in locale/fr/LC_MESSAGES/django.po "
        "(run `make messages`, translate them, `make locale/fr/LC_MESSAGES/django.mo`)",
        new,
    )


def test_the_catalogue_holds_no_string_the_source_lost(committed, regenerated):
    gone = {_key(e) for e in committed if not e.obsolete} - {_key(e) for e in regenerated}
    assert not gone, _report(
        "Entries of the catalogue whose msgid is no longer in the source (`make messages` "
        "drops them)",
        gone,
    )


# --- templates: no word outside a translation tag -------------------------------------------


@pytest.mark.parametrize(
    "template",
    i18n_lint.templates(),
    ids=[str(p.relative_to(i18n_lint.TEMPLATES)) for p in i18n_lint.templates()],
)
def test_lint_no_untranslated_text(template):
    hits = i18n_lint.lint(template)
    assert not hits, "Text outside {% translate %} / {% blocktranslate %}:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{% load i18n %}<p>{% translate "Domains" %}</p>', []),
        ("<p>Domains</p>", ["t.html:1: Domains"]),
        ("{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}<b>DMARC · SPF</b>", []),
        ('<a title="Open it" href="{% url "home" %}">{{ x }}</a>', ["t.html:1: title=Open it"]),
        ('<input type="submit" value="Save"><input type="text" value="x y">', ["value=Save"]),
        ("<code>v=DMARC1; p=reject</code>{# a comment #}<!-- html comment -->", []),
        ("<p>\n\n  {{ n|number }} domains</p>", ["t.html:3: … domains"]),
        ('<td>{{ d|default:"Never" }}</td>', ['literal "Never"']),
        ("<p>Brand</p> {# notranslate #}", []),
        ('{% include "x.html" with noun="reports" n=3 empty="" %}', ['literal "reports"']),
        ("{{ n }} {% translate 'file' %}{{ n|pluralize }}", ["pluralize"]),
        ("{% comment %}\nnot shown\n{% endcomment %}\n<p>Shown</p>", ["t.html:4: Shown"]),
    ],
)
def test_lint_finds_what_a_reader_sees_untranslated(tmp_path, source, expected):
    """The lint itself: what it must flag and what it must let through."""
    template = tmp_path / "t.html"
    template.write_text(source)
    hits = [hit.replace(f"{tmp_path}/", "") for hit in i18n_lint.lint(template)]
    assert len(hits) == len(expected), hits
    for hit, wanted in zip(hits, expected, strict=True):
        assert wanted in hit, (hit, wanted)


# --- every page in both languages ------------------------------------------------------------

# Named URLs that are no page of their own: actions (POST), files (CSV, JSON, raw report), and
# redirects. Any other named URL must be walked below: a new page is then read in French too.
NOT_PAGES = {
    "home", "logout", "favicon", "healthz", "readyz", "metrics", "switch_team", "set_language",
    "settings_preferences_save", "team_update", "team_create", "team_security", "token_revoke",
    "invitation_create", "invitation_revoke", "member_role", "member_remove",
    "alert_preferences", "channel_add", "channel_enable", "channel_disable", "channel_delete",
    "channel_test", "two_factor_enrol", "two_factor_disable",
    "domains:check", "reports:assign", "reports:raw", "reports:export", "reports:sender_mark",
    "reports:senders_csv", "reports:mailbox_fetch", "reports:mailbox_test",
    "reports:overview_volume_csv", "reports:overview_volume_json",
    "reports:domain_volume_csv", "reports:domain_volume_json",
    "reports:sender_volume_csv", "reports:sender_volume_json",
    "reports:domain_tls_csv", "reports:domain_tls_json",
    # Shown once, right after an action (test_pages_shown_once_speak_french_too reads each):
    # recovery codes, an invitation's link, a webhook's secret; the set-up, before any account.
    "two_factor_codes", "invitation_link", "channel_secret", "setup",
    "settings",  # a redirect to the first section
}  # fmt: skip
# Pages without the signed-in owner (their own client, no session).
ANONYMOUS = {
    "login", "password_reset", "password_reset_done", "password_reset_complete",
    "password_reset_confirm", "invitation",
}  # fmt: skip


def _named_urls(resolver=None, namespace="") -> set[str]:
    from django.urls import URLPattern, get_resolver

    names = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLPattern):
            if pattern.name:
                names.add(namespace + pattern.name)
        elif pattern.namespace not in {"admin"} and "api" not in str(pattern.pattern):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _named_urls(pattern, inner)
    return names


@pytest.fixture
def walk(acme, alice, bob, settings) -> dict[str, str]:
    """The path of each page, over a team with a domain, reports of each kind, a mailbox with
    a pass, an upload, a webhook, a pending invitation, an API token. Alice is staff (she sees
    the most); Bob has an authenticator (the second step of signing in)."""
    from django.utils.http import urlsafe_base64_encode
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from domains.models import AlertChannel, Domain, ManualCheck
    from mailsec.api.models import ApiToken
    from mailsec.models import Invitation, Role
    from reports.models import MailboxPass, Upload
    from tests.domains.test_pages import add_run
    from tests.reports.test_mailbox_pages import make_mailbox
    from tests.reports.test_pages import (
        make_aggregate,
        make_failure,
        make_raw,
        make_rollup,
        make_tls,
    )

    settings.EMAIL_HOST = "127.0.0.1"  # the password reset's pages exist with a mail server
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    TOTPDevice.objects.create(user=bob, name="phone", confirmed=True)
    domain = Domain.objects.create(organization=acme, name="example.com")
    run = add_run(domain, score=87, grade="B")
    report = make_aggregate("example.com", records=[("192.0.2.1", 7), ("192.0.2.2", 3)])
    make_rollup("example.com", 1, "192.0.2.1", 1234, 1200, dkim=1200, spf=1100)
    tls, failure = make_tls("example.com"), make_failure("example.com")
    make_raw(b"no report", name="junk.txt", status="refused", user=alice, team=acme)
    upload = Upload.objects.create(organization=acme, uploaded_by=alice)
    manual = ManualCheck.objects.create(domain=domain, user=alice, requested_at=run.started_at)
    mailbox = make_mailbox(acme)
    mailbox_pass = MailboxPass.objects.create(mailbox=mailbox, trigger="manual")
    AlertChannel.objects.create(
        organization=acme, kind="webhook", name="Ops", target="https://hook.test/"
    )
    ApiToken.issue(acme, alice, "CI", "read")
    _, token = Invitation.issue(acme, "new@example.test", Role.MEMBER, alice)
    d, r = domain.pk, report.pk
    return {
        "login": "/login/",
        "password_reset": "/password-reset/",
        "password_reset_done": "/password-reset/sent/",
        "password_reset_complete": "/password-reset/done/",
        "password_reset_confirm": f"/password-reset/{urlsafe_base64_encode(b'1')}/x-y/",
        "invitation": f"/invite/{token}/",
        "two_factor_verify": "/login/verify/",
        "password_change": "/account/password/",
        "password_change_done": "/account/password/done/",
        "two_factor": "/account/two-factor/",
        "settings_team": "/settings/members/",
        "settings_security": "/settings/sign-in/",
        "settings_alerts": "/settings/channels/",
        "settings_mailboxes": "/settings/mailboxes/",
        "settings_preferences": "/settings/preferences/",
        "audit_log": "/settings/audit/",
        "settings_tokens": "/settings/tokens/",
        "domains:list": "/domains/",
        "domains:add": "/domains/add/",
        "domains:detail": f"/domains/{d}/",
        "domains:edit": f"/domains/{d}/edit/",
        "domains:delete": f"/domains/{d}/delete/",
        "domains:live": f"/domains/{d}/live/",
        "domains:check_status": f"/domains/{d}/check/{manual.pk}/",
        "reports:index": "/reports/",
        "reports:upload": "/reports/upload/",
        "reports:upload_status": f"/reports/upload/{upload.pk}/",
        "reports:aggregate": f"/reports/aggregate/{r}/",
        "reports:domain": f"/reports/domain/{d}/",
        "reports:refused": "/reports/refused/",
        "reports:unclaimed": "/reports/unclaimed/",
        "reports:overview": "/reports/overview/",
        "reports:domain_tls": f"/reports/domain/{d}/tls/",
        "reports:tls": f"/reports/tls/{tls.pk}/",
        "reports:failure": f"/reports/failure/{failure.pk}/",
        "reports:mailboxes": "/reports/mailboxes/",
        "reports:mailbox_add": "/reports/mailboxes/add/",
        "reports:mailbox_edit": f"/reports/mailboxes/{mailbox.pk}/edit/",
        "reports:mailbox_delete": f"/reports/mailboxes/{mailbox.pk}/delete/",
        "reports:mailbox_facts": f"/reports/mailboxes/{mailbox.pk}/facts/",
        "reports:mailbox_pass": f"/reports/mailboxes/{mailbox.pk}/passes/{mailbox_pass.pk}/",
        "reports:senders": f"/reports/domain/{d}/senders/",
        "reports:sender": f"/reports/domain/{d}/senders/one/?sender=net:192.0.2.0/24",
    }


@pytest.mark.django_db
def test_every_named_url_is_a_page_walked_or_said_not_to_be_one(walk):
    unknown = _named_urls() - set(walk) - NOT_PAGES
    assert not unknown, f"Named URLs neither walked in both languages nor in NOT_PAGES: {unknown}"


def _main(page: str) -> str:
    """What a page says (not its lang attribute nor the footer's switcher): its <main>, or the
    whole of a fragment."""
    start, end = page.find("<main"), page.find("</main>")
    return page[start:end] if start >= 0 else page


@pytest.mark.django_db
def test_every_page_answers_in_french_and_english(walk, alice, bob):
    from tests.conftest import client_for

    failures = []
    for name, path in walk.items():
        shown = {}
        for language in ("en", "fr"):
            client = Client() if name in ANONYMOUS else client_for(alice)
            if name == "two_factor_verify":
                client = client_for(bob)  # signed in, the code still to give
            response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)
            shown[language] = response
            if response.status_code != 200:
                failures.append(f"{name} {path} in {language}: {response.status_code}")
        english, french = (_main(shown[lang].content.decode()) for lang in ("en", "fr"))
        if english == french:
            failures.append(f"{name} {path}: the French page is the English one")
        if "<html" in french and '<html lang="fr"' not in french:
            failures.append(f'{name} {path}: no lang="fr"')
    assert not failures, "\n".join(failures)


def _french(client: Client, method: str, path: str, data=None) -> str:
    response = getattr(client, method)(path, data, HTTP_ACCEPT_LANGUAGE="fr", follow=True)
    assert response.status_code == 200, (path, response.status_code)
    page = response.content.decode()
    assert '<html lang="fr"' in page, path
    return _main(page)


@pytest.mark.django_db
def test_pages_shown_once_speak_french_too(alice, settings):
    """The pages NOT_PAGES leaves out because they are shown once, after an action."""
    from tests.conftest import client_for
    from tests.mailsec.test_two_factor import code_for

    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = True
    client = client_for(alice)
    link = _french(
        client, "post", "/settings/invitations/", {"email": "c@example.test", "role": "viewer"}
    )
    assert "Invitation de c@example.test" in link
    secret = _french(
        client,
        "post",
        "/settings/channels/add/",
        {"kind": "webhook", "name": "Ops", "target": "https://hook.example.test/"},
    )
    assert "Webhook Ops ajouté" in secret
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.post("/account/two-factor/enrol/")
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    codes = _french(client, "post", "/account/two-factor/enrol/", {"code": code_for(device)})
    assert "Vos codes de secours" in codes


@pytest.mark.django_db
def test_the_set_up_page_speaks_french():
    page = _french(Client(), "get", "/setup/")
    assert "Installer mailsec" in page


@pytest.mark.django_db
def test_the_lockout_page_speaks_french(alice, settings):
    """django-axes renders it for an anonymous visitor, in the browser's language."""
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "alice", "password": "wrong guess"})
    response = client.post("/login/", {"username": "alice", "password": "correct horse 42"})
    assert response.status_code == 429
    page = response.content.decode()
    assert (
        '<html lang="fr"' in page
        and "Trop d\N{RIGHT SINGLE QUOTATION MARK}échecs de connexion" in page
    )
    limit = settings.AXES_FAILURE_LIMIT
    assert f"après {limit} mauvais mots de passe d\N{RIGHT SINGLE QUOTATION MARK}affilée" in page
