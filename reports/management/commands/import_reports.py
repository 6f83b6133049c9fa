import json
import os
import stat
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from domains.models import Organization
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
        parser.add_argument(
            "--team",
            metavar="TEAM",
            help="the team that received these reports (its id or exact name); without it they "
            "stay unclaimed until staff assign them on the unclaimed reports page",
        )

    def handle(self, *args, **options):
        as_json, paths = options["json"], options["paths"]
        team = self._team(options["team"]) if options["team"] else None
        totals: Counter = Counter()
        for path in self._files(paths):
            for outcome in self._import(path, team):
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
    def _team(given: str) -> Organization:
        """The team named by id or by its exact name, which must then be unambiguous."""
        teams = list(Organization.objects.filter(name=given)[:2])
        if given.isdigit():
            teams = list(Organization.objects.filter(pk=int(given))) or teams
        if len(teams) != 1:
            problem = "no team" if not teams else "several teams"
            raise CommandError(f"--team {given!r}: {problem} by that id or name")
        return teams[0]

    @staticmethod
    def _import(path: str, team: Organization | None) -> list[Outcome]:
        if problem := not_a_file(path):
            return [Outcome(path, "invalid", error=problem)]
        try:
            return ingest_input(path, path, via=InputSource.COMMAND, organization=team)
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


# What a path is when it is no regular file: read, /dev/zero never ends and a FIFO may never
# answer, so they are refused before anything opens them.
KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def not_a_file(path: str) -> str | None:
    """Why `path` cannot be imported, or None for a regular file (symbolic links followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    what = next((name for test, name in KINDS if test(mode)), "not a regular file")
    return f"{what}, not a file: refused"


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
