import json
import os
import textwrap

from django.core.management.base import BaseCommand, CommandError
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import override

from domains.checks import ORDER
from domains.engine import check_domains
from domains.findings import SEVERITY_LABELS, localized
from domains.models import CheckRun, Domain
from domains.names import DomainNameError, normalize_domain
from mailsec.env import parse_nameserver
from reports.models import ReportedSelector

MANY = 50  # domains; fewer are checked faster than worker processes start


class Command(BaseCommand):
    help = "Check the mail security of domains (they need not be monitored) and print the verdict."

    def add_arguments(self, parser):
        parser.add_argument("domains", nargs="+", metavar="DOMAIN")
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")
        parser.add_argument(
            "--lang",
            choices=["en", "fr"],
            default="en",
            help="Language of the human-readable output (not of --json, always English).",
        )
        parser.add_argument(
            "--nameserver",
            action="append",
            metavar="HOST[:PORT]",
            help="Resolver to use (an IP address; repeatable). Default: MAILSEC_DNS_NAMESERVERS.",
        )
        parser.add_argument(
            "--checks", metavar="CAT,...", help=f"Only these categories: {','.join(ORDER)}."
        )
        parser.add_argument("--no-save", action="store_true", help="Store nothing.")
        parser.add_argument(
            "--concurrency", type=int, default=16, help="Domains checked at once per process."
        )
        parser.add_argument(
            "--processes",
            type=int,
            help=f"Worker processes (default: one per core for {MANY} domains or more, else 1).",
        )

    def handle(self, *args, **options):
        if options["json"] and options["lang"] != "en":
            raise CommandError("--lang: the JSON output is always English; use one or the other")
        self.lang = options["lang"]
        nameservers = self._nameservers(options["nameserver"])
        categories = self._categories(options["checks"])
        inputs = [(raw, self._normalize(raw)) for raw in options["domains"]]
        names = list(dict.fromkeys(name for _, (name, error) in inputs if not error))
        options_ = {
            "concurrency": options["concurrency"],
            "processes": options["processes"] or (os.cpu_count() if len(names) >= MANY else 1),
            "categories": categories,
            "nameservers": nameservers,
        }
        if options["no_save"]:
            # Nothing is stored: one run per name, with every team's settings for it.
            results = dict(
                zip(names, check_domains(names, **options_, **self._settings(names)), strict=True)
            )
            saved = {}
        else:
            results, saved = self._check_per_team(names, options_)
        invalid = False
        for raw, (name, error) in inputs:
            if error:
                invalid = True
                self._print_error(raw, error, options["json"])
                continue
            result = results[name]
            for domain, own in saved.pop(name, []):
                CheckRun.objects.record(own, domain=domain, trigger="cli")
            self._print(raw, result, options["json"])
        if invalid:
            raise SystemExit(1)
        if any(result.status == "error" for result in results.values()):
            raise SystemExit(2)  # some domain could not be tested: no verdict to trust

    # -- input -------------------------------------------------------------------------------

    @staticmethod
    def _nameservers(values):
        if not values:
            return None
        try:
            return [parse_nameserver(value) for value in values]
        except ValueError as exc:
            raise CommandError(f"--nameserver: {exc}") from None

    @staticmethod
    def _categories(value):
        if not value:
            return None
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in ORDER]
        if unknown:
            raise CommandError(f"--checks: unknown {', '.join(unknown)}; use {','.join(ORDER)}")
        return names

    @staticmethod
    def _normalize(raw: str) -> tuple[str, str]:
        try:
            return normalize_domain(raw), ""
        except DomainNameError as exc:
            with override("en"):  # the JSON output's reason stays English
                return "", exc.messages[0]

    def _check_per_team(self, names: list[str], options: dict):
        """Runs to store: each team's domain checked with that team's own settings (its
        selectors, those its reports saw, its mail access hosts), never another team's; a name
        nobody monitors is checked once and stored without a domain. The run printed for a
        name is its first team's."""
        domains: dict[str, list] = {}
        for domain in Domain.objects.filter(name__in=names).order_by("pk"):
            domains.setdefault(domain.name, []).append(domain)
        results, saved = {}, {}
        rounds = max([len(found) for found in domains.values()] + [1])
        for turn in range(rounds):
            batch = [(n, (domains.get(n) or [None])[turn : turn + 1]) for n in names]
            batch = [(n, found[0]) for n, found in batch if found or turn == 0]
            checked = check_domains(
                [n for n, _ in batch],
                **options,
                selectors={n: self._own_selectors(d) for n, d in batch if d},
                access_hosts={n: d.mail_access_hosts for n, d in batch if d},
            )
            for (name, domain), result in zip(batch, checked, strict=True):
                results.setdefault(name, result)
                saved.setdefault(name, []).append((domain, result))
        return results, saved

    @staticmethod
    def _own_selectors(domain) -> list[str]:
        reported = ReportedSelector.for_domain(domain.organization_id, domain.name)
        return domain.dkim_selectors + [s for s in reported if s not in domain.dkim_selectors]

    @classmethod
    def _settings(cls, names: list[str]) -> dict:
        """Every team's selectors and mail access hosts for these names (for a run that is
        shown, never stored)."""
        selectors: dict[str, list[str]] = {}
        hosts: dict[str, list[str]] = {}
        for domain in Domain.objects.filter(name__in=names):
            found = selectors.setdefault(domain.name, [])
            found += [s for s in cls._own_selectors(domain) if s not in found]
            listed = hosts.setdefault(domain.name, [])
            listed += [h for h in domain.mail_access_hosts if h not in listed]
        return {"selectors": selectors, "access_hosts": hosts}

    # -- output ------------------------------------------------------------------------------

    def _print_error(self, raw: str, error: str, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({"input": raw, "domain": None, "error": error}))
        else:
            self.stderr.write(f"{raw}: {error}")

    def _print(self, raw: str, result, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(as_json_line(raw, result)))
            return
        self.stdout.write(report(result, self.lang))


def as_json_line(raw: str, result) -> dict:
    return {
        "input": raw,
        "domain": result.domain,
        "score": result.score,
        "grade": result.grade,
        "status": result.status,
        "categories": {name: _category(c) for name, c in result.categories.items()},
        "findings": [f.as_dict() for f in result.findings],
    }


def _category(result) -> dict:
    """Status and score; the protocol probe categories add their `servers`."""
    found = {"status": str(result.status), "score": result.score}
    if result.servers is not None:
        found["servers"] = result.servers
    return found


def server_line(row: dict) -> str:
    """One probed server, in the active language (the reach and DANE states are codes)."""
    where = _("%(host)s (%(address)s) port %(port)s") % row
    if not row["reachable"]:
        return f"    {where}: {row['reach'].replace('_', ' ')}"
    parts = [", ".join(row["tls_versions"]) or _("no TLS")]
    cert = row.get("certificate")
    if cert:
        shown = {"subject": cert["subject"], "until": cert["not_after"][:10]}
        if cert["trusted"]:
            parts.append(_("certificate %(subject)s until %(until)s (trusted)") % shown)
        else:
            parts.append(_("certificate %(subject)s until %(until)s (untrusted)") % shown)
    parts.append(f"DANE {row['dane']}")
    if row["plaintext_auth"]:
        parts.append(_("password before TLS"))
    if row.get("open_relay"):
        parts.append(_("OPEN RELAY"))
    return f"    {where}: " + "; ".join(parts)


def report(result, lang: str = "en") -> str:
    with override(lang):
        return _report(result)


def _report(result) -> str:
    seconds = (result.finished_at - result.started_at).total_seconds()
    if result.status == "error":
        verdict = _("could not test")
    else:
        verdict = _("grade %(grade)s, score %(score)s/100") % {
            "grade": result.grade,
            "score": result.score,
        }
    lines = [
        _("%(domain)s: %(verdict)s (%(status)s; %(queries)s DNS queries, %(seconds)s s)")
        % {
            "domain": result.domain,
            "verdict": verdict,
            "status": result.status,
            "queries": result.queries,
            "seconds": number_format(seconds, 1),
        },
        "  "
        + "  ".join(
            f"{name} {c.status}{'' if c.score is None else f' {c.score}'}"
            for name, c in result.categories.items()
        ),
    ]
    for name, category in result.categories.items():
        if category.servers:
            lines.append("  " + _("%(category)s servers:") % {"category": name})
            lines += [server_line(row) for row in category.servers]
    for f in result.findings:
        title, detail, remediation = localized(f, result.domain)
        lines.append(f"  [{str(SEVERITY_LABELS[f.severity]).upper()}] {f.id}: {title}")
        lines += textwrap.wrap(detail, 96, initial_indent="      ", subsequent_indent="      ")
        lines += textwrap.wrap(
            _("Fix: %(fix)s") % {"fix": remediation},
            96,
            initial_indent="      ",
            subsequent_indent="        ",
        )
    return "\n".join(lines) + "\n"
