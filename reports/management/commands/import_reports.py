import json
import os
from collections import Counter

from django.core.management.base import BaseCommand
from django.utils.translation import ngettext

from reports.ingest import Outcome, ingest_input
from reports.models import InputSource


class Command(BaseCommand):
    help = (
        "Import DMARC aggregate, SMTP TLS and failure reports from files (XML, JSON, gzip, "
        "zip, .eml, mbox; directories are searched recursively)."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--json", action="store_true", help="one JSON object per report, then a summary"
        )

    def handle(self, *args, **options):
        as_json, paths = options["json"], options["paths"]
        totals: Counter = Counter()
        for path in self._files(paths):
            for outcome in self._import(path):
                totals[outcome.status] += 1
                if outcome.status == "imported":
                    totals["records"] += outcome.records or 0
                    totals["messages"] += outcome.messages or 0
                self._show(outcome, as_json)
        summary = {
            "imported": totals["imported"],
            "duplicate": totals["duplicate"],
            "invalid": totals["invalid"],
            "records": totals["records"],
            "messages": totals["messages"],
        }
        if as_json:
            self.stdout.write(json.dumps({"summary": summary}))
        else:
            self.stdout.write(
                f"{summary['imported']} imported "
                f"({_count(summary['records'], 'record', 'records')}, "
                f"{_count(summary['messages'], 'message', 'messages')}), "
                f"{summary['duplicate']} duplicate, {summary['invalid']} invalid"
            )
        if totals["invalid"]:
            raise SystemExit(1)

    @staticmethod
    def _files(paths):
        """The given paths, directories replaced by the files under them, in a stable order."""
        for path in paths:
            if os.path.isdir(path):
                for root, dirs, files in os.walk(path):
                    dirs.sort()
                    for name in sorted(files):
                        yield os.path.join(root, name)
            else:
                yield path

    @staticmethod
    def _import(path: str) -> list[Outcome]:
        if not os.path.isfile(path):
            return [Outcome(path, "invalid", error="no such file")]
        try:
            return ingest_input(path, path, via=InputSource.COMMAND)
        except OSError as exc:
            return [Outcome(path, "invalid", error=f"cannot read: {exc.strerror}")]

    def _show(self, outcome: Outcome, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(outcome.as_json()))
            return
        where = _where(outcome)
        if outcome.status == "invalid":
            self.stdout.write(f"{where}: invalid: {outcome.error}")
        else:
            self.stdout.write(
                f"{where}: {outcome.status} {outcome.kind} report {outcome.report_id!r} "
                f"from {outcome.org_name} for {outcome.domain}: "
                f"{_count(outcome.records, 'record', 'records')}, "
                f"{_count(outcome.messages, 'message', 'messages')}"
            )


def _where(outcome: Outcome) -> str:
    """The file, and the part of it the outcome is about when that is not the file itself:
    "a.eml, attachment 2 (r.zip), member r.xml" (the part's name starts with the file's)."""
    part = outcome.part
    if not part or part == outcome.file:
        return outcome.file
    return part if part.startswith(outcome.file) else f"{outcome.file} [{part}]"


def _count(number: int | None, singular: str, plural: str) -> str:
    number = number or 0
    return f"{number} {ngettext(singular, plural, number)}"
