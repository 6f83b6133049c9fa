"""docs/findings.md is generated from the catalogue (`manage.py findings_doc`): kept in step."""

from pathlib import Path

from domains.findings import KINDS
from domains.management.commands.findings_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "findings.md"


def test_the_findings_doc_is_the_catalogue_rendered():
    assert DOC.read_text() == render(), (
        "docs/findings.md differs from domains/findings.py: run "
        "`.venv/bin/python manage.py findings_doc > docs/findings.md`"
    )


def test_every_finding_id_is_unique_and_documented():
    ids = [kind.id for kind in KINDS]
    assert len(ids) == len(set(ids))
    text = DOC.read_text()
    assert all(f"`{kind_id}`" in text for kind_id in ids)


def test_the_french_findings_doc_is_the_catalogue_rendered_in_french():
    french = DOC.with_name("findings.fr.md")
    assert french.read_text() == render("fr"), (
        "docs/findings.fr.md differs from domains/findings.py or its French: run "
        "`.venv/bin/python manage.py findings_doc --lang fr > docs/findings.fr.md`"
    )
    assert french.read_text().startswith("# Constats\n")
    assert all(f"`{kind.id}`" in french.read_text() for kind in KINDS)
