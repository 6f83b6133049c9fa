"""Adding many domains at once: the good names are added, the bad ones listed with reasons."""

import csv
import io
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from domains.models import Domain, Organization
from domains.names import DomainNameError, display_domain, normalize_domain

MAX_NAMES = 10_000
HEADER_WORDS = {"domain", "domains", "name", "domain name", "domain_name"}


@dataclass
class Rejected:
    line: int
    text: str
    reason: str


@dataclass
class BulkAddResult:
    added: list[Domain] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def names_from_text(text: str) -> list[tuple[int, str]]:
    """One name per line; blank lines and lines starting with '#' are ignored."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append((number, line))
    return entries


def names_from_csv(data: bytes) -> list[tuple[int, str]]:
    """The first column of each row; a header row ("domain", "name") is skipped.

    Raises ValueError when the file is not UTF-8 text or not CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(_("The file is not UTF-8 text.")) from None
    if "\x00" in text:
        raise ValueError(_("The file is not a CSV text file."))
    entries = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cell = row[0].strip() if row else ""
            if not cell or cell.startswith("#"):
                continue
            if number == 1 and cell.lower() in HEADER_WORDS:
                continue
            entries.append((number, cell))
    except csv.Error as exc:
        raise ValueError(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None
    return entries


def add_domains(organization: Organization, entries: list[tuple[int, str]]) -> BulkAddResult:
    result = BulkAddResult()
    if len(entries) > MAX_NAMES:
        result.rejected.append(
            Rejected(
                0,
                "",
                _("Too many names (%(count)d); add at most %(most)d at once.")
                % {"count": len(entries), "most": MAX_NAMES},
            )
        )
        return result
    seen: dict[str, int] = {}
    fresh: list[Domain] = []
    existing = set(
        organization.domains.filter(
            name__in=[_try_normalize(text) for _, text in entries]
        ).values_list("name", flat=True)
    )
    for line, text in entries:
        try:
            name = normalize_domain(text)
        except DomainNameError as exc:
            result.rejected.append(Rejected(line, text, exc.messages[0]))
            continue
        if name in existing:
            reason = _("%(name)s is already monitored by this team.") % {
                "name": display_domain(name)
            }
            result.rejected.append(Rejected(line, text, reason))
        elif name in seen:
            result.rejected.append(
                Rejected(
                    line, text, _("Listed twice (first on line %(line)d).") % {"line": seen[name]}
                )
            )
        else:
            seen[name] = line
            fresh.append(Domain(organization=organization, name=name))
    try:
        with transaction.atomic():
            result.added = Domain.objects.bulk_create(fresh)
    except IntegrityError:
        # Someone added one of these names meanwhile: fall back to one by one.
        result.added = []
        for domain in fresh:
            try:
                with transaction.atomic():
                    domain.save()
                result.added.append(domain)
            except IntegrityError:
                reason = _("%(name)s is already monitored by this team.") % {
                    "name": domain.display_name
                }
                result.rejected.append(Rejected(seen[domain.name], domain.name, reason))
    return result


def _try_normalize(text: str) -> str:
    try:
        return normalize_domain(text)
    except DomainNameError:
        return ""
