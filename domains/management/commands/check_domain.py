import json
import os
import textwrap

from django.core.management.base import BaseCommand, CommandError

from domains.checks import ORDER
from domains.engine import check_domains
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
        nameservers = self._nameservers(options["nameserver"])
        categories = self._categories(options["checks"])
        inputs = [(raw, self._normalize(raw)) for raw in options["domains"]]
        names = [name for _, (name, error) in inputs if not error]
        selectors = self._selectors(names)
        access_hosts = self._access_hosts(names)
        results = dict(
            zip(
                names,
                check_domains(
                    names,
                    concurrency=options["concurrency"],
                    processes=options["processes"] or (os.cpu_count() if len(names) >= MANY else 1),
                    categories=categories,
                    nameservers=nameservers,
                    selectors=selectors,
                    access_hosts=access_hosts,
                ),
                strict=True,
            )
        )
        invalid = False
        for raw, (name, error) in inputs:
            if error:
                invalid = True
                self._print_error(raw, error, options["json"])
                continue
            result = results[name]
            if not options["no_save"]:
                self._save(result)
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
            return "", exc.messages[0]

    @staticmethod
    def _selectors(names: list[str]) -> dict[str, list[str]]:
        """The extra DKIM selectors for these names: configured by a team monitoring the name,
        or seen in the DMARC reports such a team received."""
        selectors: dict[str, list[str]] = {}
        for name, team, configured in Domain.objects.filter(name__in=names).values_list(
            "name", "organization_id", "dkim_selectors"
        ):
            found = selectors.setdefault(name, [])
            found += [s for s in configured if s not in found]
            found += [s for s in ReportedSelector.for_domain(team, name) if s not in found]
        return selectors

    @staticmethod
    def _access_hosts(names: list[str]) -> dict[str, list[str]]:
        """The mail access hosts any team configured for these names."""
        hosts: dict[str, list[str]] = {}
        rows = Domain.objects.filter(name__in=names).values_list("name", "mail_access_hosts")
        for name, configured in rows:
            found = hosts.setdefault(name, [])
            found += [h for h in configured if h not in found]
        return hosts

    @staticmethod
    def _save(result) -> None:
        monitored = list(Domain.objects.filter(name=result.domain))
        for domain in monitored or [None]:
            CheckRun.objects.record(result, domain=domain, trigger="cli")

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
        self.stdout.write(report(result))


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
    where = f"{row['host']} ({row['address']}) port {row['port']}"
    if not row["reachable"]:
        return f"    {where}: {row['reach'].replace('_', ' ')}"
    parts = [", ".join(row["tls_versions"]) or "no TLS"]
    cert = row.get("certificate")
    if cert:
        trusted = "trusted" if cert["trusted"] else "untrusted"
        parts.append(f"certificate {cert['subject']} until {cert['not_after'][:10]} ({trusted})")
    parts.append(f"DANE {row['dane']}")
    if row["plaintext_auth"]:
        parts.append("password before TLS")
    if row.get("open_relay"):
        parts.append("OPEN RELAY")
    return f"    {where}: " + "; ".join(parts)


def report(result) -> str:
    seconds = (result.finished_at - result.started_at).total_seconds()
    if result.status == "error":
        verdict = "could not test"
    else:
        verdict = f"grade {result.grade}, score {result.score}/100"
    lines = [
        f"{result.domain}: {verdict} "
        f"({result.status}; {result.queries} DNS queries, {seconds:.1f} s)",
        "  "
        + "  ".join(
            f"{name} {c.status}{'' if c.score is None else f' {c.score}'}"
            for name, c in result.categories.items()
        ),
    ]
    for name, category in result.categories.items():
        if category.servers:
            lines.append(f"  {name} servers:")
            lines += [server_line(row) for row in category.servers]
    for f in result.findings:
        lines.append(f"  [{f.severity.upper()}] {f.id}: {f.title}")
        lines += textwrap.wrap(f.detail, 96, initial_indent="      ", subsequent_indent="      ")
        lines += textwrap.wrap(
            "Fix: " + f.remediation, 96, initial_indent="      ", subsequent_indent="        "
        )
    return "\n".join(lines) + "\n"
