"""Wording (issue 14): counts take the singular or the plural (Django's ngettext/pluralize),
never "domain(s)"; import_reports names each input once."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import client_for

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "reports"
# A noun of four letters or more: "len(s)" is a call, "domain(s)" a hedged plural.
HEDGED_PLURAL = re.compile(r"[A-Za-z]{4,}\(s\)")


def test_no_hedged_plural_in_templates_or_code():
    files = [*(ROOT / "templates").rglob("*.html"), *(ROOT / "templates").rglob("*.txt")]
    for app in ("domains", "reports", "mailsec"):
        files += (ROOT / app).rglob("*.py")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        # "http(s)" names two URL schemes; it is no plural.
        if HEDGED_PLURAL.search(line.replace("http(s)", ""))
    ]
    # A docstring's prose may say "name(s)"; what a user reads may not.
    assert [f for f in found if '"""' not in f] == []


@pytest.mark.parametrize(
    ("names", "said"),
    [(["one.example"], "Added 1 domain."), (["a.example", "b.example"], "Added 2 domains.")],
)
def test_added_domains_message(alice, acme, names, said):
    response = client_for(alice).post("/domains/add/", {"names": "\n".join(names)}, follow=True)
    page = response.content.decode()
    assert said in page and "(s)" not in page


@pytest.mark.django_db
def test_import_reports_names_a_plain_file_once(capsys):
    path = str(FIXTURES / "aggregate/cryinc__acme.xml")
    call_command("import_reports", path)
    [line, summary] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{path}: imported aggregate report ")
    assert line.count(path) == 1 and "[" not in line
    assert line.endswith(": 1 record, 2 messages")
    assert summary == "1 imported (1 record, 2 messages), 0 duplicate, 0 invalid"


@pytest.mark.django_db
def test_import_reports_names_the_part_inside_a_container(capsys):
    path = str(FIXTURES / "smtp_tls/mailauth__rpt01-gzip.eml")
    call_command("import_reports", path)
    line = capsys.readouterr().out.splitlines()[0]
    # The part's name starts with the file's: said once, followed by where in the file.
    assert line.startswith(f"{path} \u203a attachment ")
    assert line.count(path) == 1
