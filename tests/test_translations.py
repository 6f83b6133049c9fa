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
    return {m.group(1) or m.group(3) or m.group(0) for m in PLACEHOLDER.finditer(text)}


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
        ('<td>{{ d|default:"Never" }}</td>', ['filter literal "Never"']),
        ("<p>Brand</p> {# notranslate #}", []),
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
