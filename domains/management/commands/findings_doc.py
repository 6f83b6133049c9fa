from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override

from domains.findings import KINDS, SEVERITY_LABELS

HEADER = gettext_lazy(
    """# Findings

Every finding mailsec reports, by category. The id is stable: pages, alerts, history and the
`check_domain --json` output use it. Severity is the usual one; a few findings take another when
the evidence or the rest of the run calls for it (noted in the fix; docs/scoring.md, "Severity in
context", gives the rules). A failed DNS lookup is never taken for a missing record: it
voids the verdicts that need its answer (a whole category, then "could not test"), and the run
reports it once per failing zone (`dns.lookup_failed`, `dns.partial_lookup_failed`), or once
about the resolver when that cannot be trusted (`dns.resolver_broken`).

This file is generated from `domains/findings.py` by `python manage.py findings_doc >
docs/findings.md`; a test keeps the two in step.
"""
)
LANGUAGES = ["en", "fr"]


def render(lang: str = "en") -> str:
    with override(lang):
        lines = [str(HEADER)]
        category = None
        for kind in KINDS:
            if kind.category != category:
                category = kind.category
                lines += [
                    f"\n## {category}\n",
                    "| id | {} | {} | {} |".format(_("severity"), _("title"), _("how to fix")),
                    "|---|---|---|---|",
                ]
            fix = kind.fix().replace("|", "\\|")
            severity = SEVERITY_LABELS[kind.severity]
            lines.append(f"| `{kind.id}` | {severity} | {kind.title} | {fix} |")
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = (
        "Print docs/findings.md from the findings catalogue (--lang fr: docs/findings.fr.md, "
        "the French catalogue)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lang", choices=LANGUAGES, default="en")

    def handle(self, *args, **options):
        self.stdout.write(render(options["lang"]), ending="")
