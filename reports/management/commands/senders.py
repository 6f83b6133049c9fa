import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from domains.models import Domain
from domains.names import DomainNameError, normalize_domain
from reports.management.commands.import_reports import Command as ImportCommand
from reports.ranges import custom_range
from reports.senders.report import senders_view

COLUMNS = [
    ("Sender", 28), ("Type", 14), ("IPs", 5), ("CC", 3), ("Messages", 9), ("Pass", 7),
    ("SPF al.", 8), ("DKIM al.", 8), ("Classification", 18),
]  # fmt: skip


class Command(BaseCommand):
    help = (
        "Who sends mail as DOMAIN, by service, from the team's DMARC aggregate reports, and "
        "how ready the domain is for a stricter DMARC policy. Exit status 2 when some source "
        "addresses were not looked up yet, or their lookup failed (their senders are shown by "
        "address block)."
    )

    def add_arguments(self, parser):
        parser.add_argument("domain", metavar="DOMAIN")
        parser.add_argument(
            "--team", metavar="TEAM", help="the team whose domain it is (id or exact name)"
        )
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="first day (UTC)")
        parser.add_argument("--until", metavar="YYYY-MM-DD", help="last day (UTC), default today")
        parser.add_argument(
            "--json", action="store_true", help="one JSON object per sender, then the readiness"
        )

    def handle(self, *args, **options):
        domain = self._domain(options["domain"], options["team"])
        try:
            since, until = _day(options["since"], "--since"), _day(options["until"], "--until")
            chosen = custom_range(since, until, timezone.now().date())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        view = senders_view(domain, chosen.since, chosen.until)
        if options["json"]:
            for sender in view.senders:
                self.stdout.write(json.dumps(sender.as_json()))
            self.stdout.write(json.dumps({"readiness": view.readiness.as_json()}))
        else:
            self.stdout.write(_table(view))
        if view.unknown:
            raise SystemExit(2)

    @staticmethod
    def _domain(raw: str, team: str | None) -> Domain:
        try:
            name = normalize_domain(raw)
        except DomainNameError as exc:
            raise CommandError(f"{raw}: {exc.messages[0]}") from None
        found = Domain.objects.filter(name=name)
        if team:
            found = found.filter(organization=ImportCommand._team(team))
        domains = list(found.select_related("organization")[:2])
        if not domains:
            raise CommandError(
                f"{name}: no team monitors this domain" + (" in --team" * bool(team))
            )
        if len(domains) > 1:
            raise CommandError(f"{name}: several teams monitor this domain: choose one with --team")
        return domains[0]


def _day(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def _cell(value, width: int) -> str:
    text = "" if value is None else str(value)
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def _table(view) -> str:
    lines = [
        f"Senders of {view.domain.name} ({view.domain.organization.name}), "
        f"{view.since} to {view.until}",
        "",
        " ".join(_cell(title, width) for title, width in COLUMNS),
    ]
    for s in view.senders:
        rate = f"{s.pass_rate:.1f}%" if s.pass_rate is not None else "-"
        values = [
            s.label, s.service_type or "", len(s.ips), s.country or "", s.messages, rate,
            s.spf_aligned, s.dkim_aligned, str(s.classification),
        ]  # fmt: skip
        lines.append(" ".join(_cell(v, w) for v, (_, w) in zip(values, COLUMNS, strict=True)))
    if not view.senders:
        lines.append("(no messages reported in this range)")
    r = view.readiness
    lines += ["", f"Policy: {r.policy}; next step: {r.step.change if r.step else 'none'}"]
    if r.step and r.messages:
        lines.append(
            f"It would have {r.step.verb} {r.affected} of {r.messages} messages "
            f"({r.share:.1f}%): {r.legitimate} legitimate, {r.spoofing} from the rest."
        )
    for f in r.failing_authorised:
        lines.append(f"  failing authorised: {f.label}: " + "; ".join(c.text for c in f.causes))
    lines.append(r.recommendation)
    if view.unknown:
        lines.append(f"{view.unknown} addresses not looked up yet (or the lookup failed).")
    return "\n".join(lines) + "\n"
