"""What changed between two runs of a domain: the events of its timeline, and of its alerts.

Pure apart from reading the runs' findings: runs in, unsaved DomainEvents out. A category that
could not be tested in either run says nothing about findings or records there, so a DNS outage
never looks like "all findings resolved"."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from domains.findings import CATALOGUE, sentence
from domains.models import CheckRun, DomainEvent, EventKind
from domains.templatetags.domain_labels import SEVERITY_LABELS

GRADE_ORDER = ["F", "D", "C", "B", "A", "A+"]
# Records whose change is news (MTA-STS: the record's id and the policy).
WATCHED_RECORDS = ["mx", "spf", "dmarc", "dkim", "mta_sts", "submission", "imap", "pop3"]
# What a mail server change is made of: the facts of a server that answered in both runs (one
# that stopped answering is a finding, smtp.unreachable or "could not test", not a change).
SERVER_FACTS = ["starttls", "tls_versions", "certificate", "dane", "plaintext_auth", "open_relay"]
CERT_FACTS = ["subject", "issuer", "not_after", "trusted", "name_matches"]
PROBE_CATEGORIES = ["smtp", "submission", "imap", "pop3"]


def compare(previous: CheckRun | None, run: CheckRun) -> list[DomainEvent]:
    if previous is None:
        return []
    events = _grade(previous, run) + _failures(previous, run)
    tested = [c for c in run.categories if _tested(previous, c) and _tested(run, c)]
    events += _findings(previous, run, tested)
    events += _records(previous, run, tested)
    events += _servers(previous, run, tested)
    for event in events:
        event.domain_id, event.run, event.created_at = run.domain_id, run, run.finished_at
    return events


def _tested(run: CheckRun, category: str) -> bool:
    return run.categories.get(category, {}).get("status") not in (None, "error")


def _grade(previous: CheckRun, run: CheckRun) -> list[DomainEvent]:
    if not previous.grade or not run.grade or previous.grade == run.grade:
        return []
    dropped = GRADE_ORDER.index(run.grade) < GRADE_ORDER.index(previous.grade)
    kind = EventKind.GRADE_DROPPED if dropped else EventKind.GRADE_RAISED
    summary = f"Grade {previous.grade} → {run.grade} (score {previous.score} → {run.score})"
    data = {"before": previous.grade, "after": run.grade}
    data |= {"score_before": previous.score, "score_after": run.score}
    return [DomainEvent(kind=kind, summary=summary, data=data)]


def _failures(previous: CheckRun, run: CheckRun) -> list[DomainEvent]:
    """Categories that could be tested before and cannot now."""
    events = []
    # A failed lookup is one finding per failing zone (or one about the resolver), kept in the
    # first category it voided: the others that it voided give it as their reason too.
    shared = [
        f["detail"]
        for result in run.categories.values()
        for f in result.get("findings", [])
        if f["id"].startswith("dns.")
    ]
    for category, result in run.categories.items():
        if result.get("status") == "error" and _tested(previous, category):
            own = [f["detail"] for f in result.get("findings", [])]
            reasons = "; ".join(own or shared)[:250]
            events.append(
                DomainEvent(
                    kind=EventKind.CHECK_FAILED,
                    summary=f"Could not test {category}: {reasons}",
                    data={"category": category},
                )
            )
    return events


def _findings(previous: CheckRun, run: CheckRun, tested: list[str]) -> list[DomainEvent]:
    def keyed(r: CheckRun) -> dict:
        # As a sentence: evidence stored before it ended with a full stop is the same evidence.
        return {(f.kind, sentence(f.detail)): f for f in r.findings.all() if f.category in tested}

    before, after = keyed(previous), keyed(run)
    changed = [(EventKind.FINDING_APPEARED, "New {severity} finding", after, before)]
    changed += [(EventKind.FINDING_RESOLVED, "Resolved", before, after)]
    events = [
        DomainEvent(
            kind=kind,
            severity=f.severity,
            summary=f"{label.format(severity=f.severity)}: {f.title} ({f.kind})",
            data={"finding": f.kind, "category": f.category, "detail": f.detail},
        )
        for kind, label, present, absent in changed
        for key, f in present.items()
        if key not in absent
    ]
    return sorted(events, key=lambda e: (e.kind, e.summary))


def _records(previous: CheckRun, run: CheckRun, tested: list[str]) -> list[DomainEvent]:
    events = []
    for category in WATCHED_RECORDS:
        if category not in tested:
            continue
        before = previous.categories[category].get("records", {})
        after = run.categories[category].get("records", {})
        if before != after:
            events.append(
                DomainEvent(
                    kind=EventKind.RECORD_CHANGED,
                    summary=f"{category.upper().replace('_', '-')} records changed",
                    data={"category": category, "before": before, "after": after},
                )
            )
    return events


def _facts(row: dict) -> dict:
    facts = {name: row.get(name) for name in SERVER_FACTS}
    cert = row.get("certificate")
    facts["certificate"] = {k: cert.get(k) for k in CERT_FACTS} if cert else None
    return facts


def _reached(run: CheckRun, category: str) -> dict:
    rows = (run.categories.get(category) or {}).get("servers") or []
    return {
        (r["host"], r["address"], r["port"], r.get("tls_mode")): _facts(r)
        for r in rows
        if r.get("reachable")
    }


def _servers(previous: CheckRun, run: CheckRun, tested: list[str]) -> list[DomainEvent]:
    """A server that answered both times and now serves another certificate, other TLS
    versions, no STARTTLS, relays ..."""
    events = []
    for category in PROBE_CATEGORIES:
        if category not in tested:
            continue
        before, after = _reached(previous, category), _reached(run, category)
        for key in sorted(before.keys() & after.keys()):
            if before[key] == after[key]:
                continue
            changed = [n for n in SERVER_FACTS if before[key][n] != after[key][n]]
            host, address, port, _mode = key
            events.append(
                DomainEvent(
                    kind=EventKind.SERVER_CHANGED,
                    summary=f"{category.upper()} server {host} ({address}) port {port}: "
                    f"{', '.join(changed).replace('_', ' ')} changed"[:300],
                    data={
                        "category": category,
                        "server": f"{host} ({address}) port {port}",
                        "before": before[key],
                        "after": after[key],
                    },
                )
            )
    return events


# --- in the reader's language --------------------------------------------------------------------


def describe(kind: str, data: dict, summary: str) -> str:
    """An event's summary in the active language, written again from its data; the stored
    summary (English, what the API and webhooks carry) when the data cannot say it all."""
    if kind in (EventKind.GRADE_DROPPED, EventKind.GRADE_RAISED):
        if data.get("sample"):
            return _(
                "Grade dropped from %(before)s to %(after)s (a sample event: this is a test alert)"
            ) % {"before": data.get("before"), "after": data.get("after")}
        if all(k in data for k in ("before", "after", "score_before", "score_after")):
            return _("Grade %(before)s → %(after)s (score %(score_before)s → %(score_after)s)") % {
                k: data[k] for k in ("before", "after", "score_before", "score_after")
            }
    elif kind in (EventKind.FINDING_APPEARED, EventKind.FINDING_RESOLVED) and data.get("finding"):
        return _finding_summary(kind, data, summary)
    elif kind == EventKind.CHECK_FAILED and data.get("category"):
        prefix = f"Could not test {data['category']}: "
        if summary.startswith(prefix):
            return _("Could not test %(category)s: %(reasons)s") % {
                "category": data["category"],
                "reasons": summary.removeprefix(prefix),
            }
    elif kind == EventKind.RECORD_CHANGED and data.get("category"):
        record = data["category"].upper().replace("_", "-")
        if summary == f"{record} records changed":
            return _("%(record)s records changed") % {"record": record}
    elif kind == EventKind.SERVER_CHANGED and data.get("server") and data.get("category"):
        before, after = data.get("before") or {}, data.get("after") or {}
        changed = [n for n in SERVER_FACTS if before.get(n) != after.get(n)]
        if changed:
            return _("%(service)s server %(server)s: %(facts)s changed") % {
                "service": data["category"].upper(),
                "server": data["server"],
                "facts": ", ".join(str(SERVER_FACT_LABELS.get(n, n)) for n in changed),
            }
    elif kind == EventKind.NEW_SENDER and {"label", "messages", "dmarc_pass"} <= data.keys():
        # Imported here: reports depends on domains, not the other way round.
        from mailsec.templatetags.localized import number, percent
        from reports.senders.classify import Classification

        if data.get("classification") in {c.value for c in Classification} and data["messages"]:
            count = data["messages"]
            return ngettext(
                "New sender %(sender)s: %(count)s message, %(rate)s DMARC pass (%(class)s)",
                "New sender %(sender)s: %(count)s messages, %(rate)s DMARC pass (%(class)s)",
                count,
            ) % {
                "sender": data["label"],
                "count": number(count),
                "rate": percent(100.0 * data["dmarc_pass"] / count, 0),
                "class": Classification(data["classification"]).display.lower(),
            }
    return summary


def _finding_summary(kind: str, data: dict, summary: str) -> str:
    """ "New high finding: <title> (<id>)" or "Resolved: <title> (<id>)", said again; the title
    is the catalogue's in the reader's language, else (a kind gone from it) the one stored."""
    suffix = f" ({data['finding']})"
    if kind == EventKind.FINDING_RESOLVED:
        prefix, severity = "Resolved: ", ""
    else:
        prefix = next(
            (f"New {s} finding: " for s in SEVERITY_LABELS if f"New {s} finding: " in summary), ""
        )
        severity = prefix.removeprefix("New ").removesuffix(" finding: ")
    if not prefix or not summary.startswith(prefix) or not summary.endswith(suffix):
        return summary
    catalogued = CATALOGUE.get(data["finding"])
    title = (
        str(catalogued.title) if catalogued else summary.removeprefix(prefix).removesuffix(suffix)
    )
    facts = {"title": title, "finding": data["finding"]}
    if kind == EventKind.FINDING_RESOLVED:
        return _("Resolved: %(title)s (%(finding)s)") % facts
    facts["severity"] = SEVERITY_LABELS[severity]
    return _("New %(severity)s finding: %(title)s (%(finding)s)") % facts


SERVER_FACT_LABELS = {
    "starttls": "STARTTLS",
    "tls_versions": gettext_lazy("TLS versions"),
    "certificate": gettext_lazy("certificate"),
    "dane": "DANE",
    "plaintext_auth": gettext_lazy("plaintext authentication"),
    "open_relay": gettext_lazy("open relay"),
}
