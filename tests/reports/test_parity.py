"""Parity of the aggregate-report parser with parsedmarc 11.1, the parser most users would
otherwise run, on every real aggregate fixture (tests/fixtures/reports/README.md).

Each fixture is in exactly one class, spelled out below: both accept it (compared field by
field and record by record), only parsedmarc refuses it, only mailsec refuses it, or both
refuse it. A change in either parser therefore fails a test instead of quietly moving a file
out of the comparison.

parsedmarc needs about 3 s for all the fixtures (the 3,555- and 2,286-record reports take most
of it), so each file is parsed once per session by either side.
"""

import functools
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import parsedmarc
import pytest

from reports.parsing import parse, unpack
from reports.parsing.types import AggregateMeta, AggregateRecord, AggregateReport, Refused
from tests.netguard import NetworkLeak

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "aggregate"
FILES = sorted(path.name for path in FIXTURES.iterdir() if path.is_file())

# parsedmarc refuses these, mailsec reads them: file -> (records, messages) from the README.
PARSEDMARC_ONLY_REFUSES = {
    "dmarcrua__TestFeedback12-bom.xml": (1, 1),  # UTF-8 BOM before the XML declaration
    "dmarcrua__dmarc1namespace.xml": (15, 22),  # BOM and a namespace URI missing its colon
    "dmarcrua__invalid-docomo-hardfail_TestFeedback13.xml": (1, 1),  # BOM and a comment
    "modoboa__hotmail_zip.eml": (1, 1),  # the XML inside the zip starts with a BOM
    "tierpod__test.xml.gz.gz": (2, 7),  # gzip inside gzip
}
# mailsec refuses these on purpose, parsedmarc reads them: synthetic samples whose date range
# starts before 1990 (100, 161212415, 302832000), a date no real report carries; mailsec
# refuses dates it cannot trust rather than store them.
MAILSEC_ONLY_REFUSES = frozenset(
    {
        "mailauth__001-v2-extensions.xml",
        "mailauth__004-dmarc2-ns-generator.xml",
        "mailauth__005-sampled-out.xml",
        "parsedmarc__rfc9990-sample.xml",
    }
)
BOTH_REFUSE = frozenset(
    {
        "dmarcrua__invalid-truncated-wp.pl_0708a2ec5df54aac9c204249898d27bd.xml",
        "dmarcrua__invalid-zero-records-cwru_2cc32d95b4f142578eb7c70d3cea6219.xml",
        "modoboa__amazonses_png-not-report.eml",
        "modoboa__yahoo_missing-policy-domain.eml",
        "parsedmarc__empty.xml",
        "tierpod__test_empty.xml",
    }
)
COMPARED = [
    name
    for name in FILES
    if name not in PARSEDMARC_ONLY_REFUSES
    and name not in MAILSEC_ONLY_REFUSES
    and name not in BOTH_REFUSE
]
# Reports spanning more than a day, which parsedmarc splits into per-day rows (README).
SPLIT_PER_DAY = frozenset(
    {
        "dmarcrua__artfiles-48h_fc3ddfcb53394ed3b9a334a6e4e69abd.xml",
        "dmarcrua__cisco-esa-168h_ebb58dbb30c640929e459c98d75f10f1.xml",
        "dmarcrua__sealy-201days_e0e17040a8e4454bbb05ed680ff5df0f.xml",
        "parsedmarc__report_with_upper_cased_pass.xml",
        "tierpod__test2-3year-span.xml",
    }
)
# Malformed documents both parsers recover, each in its own way, where a header_from sits on
# the damage: file -> (mailsec's value, parsedmarc's value). Neither value is the sender's
# domain, and mailsec marks the report "malformed XML recovered".
RECOVERED_HEADER_FROM = {
    # <header_from>bad<xml.net</header_from>: lxml keeps the text before the stray "<",
    # parsedmarc's recovery loses it all.
    "parsedmarc__invalid_xml.xml": ("bad", ""),
    # "bad_byte" then the byte 0x91, invalid UTF-8: lxml substitutes U+FFFD, parsedmarc drops it.
    "parsedmarc__invalid_utf_8.xml": ("bad_byte\ufffd", "bad_byte"),
}


# --- both sides, parsed once per session ----------------------------------------------------


class Theirs(NamedTuple):
    report: dict | None
    error: str


class Ours(NamedTuple):
    reports: list[tuple[AggregateMeta, list[AggregateRecord]]]
    refusals: list[str]


@functools.cache
def parsedmarc_outcome(name: str) -> Theirs:
    try:
        result = parsedmarc.parse_report_file(str(FIXTURES / name), offline=True)
    except parsedmarc.ParserError as exc:
        _raise_network_leak(exc)
        return Theirs(None, str(exc))
    assert result["report_type"] == "aggregate"
    return Theirs(result["report"], "")


def _raise_network_leak(exc: BaseException) -> None:
    """parsedmarc wraps unexpected errors in ParserError; one from the network guard means it
    tried the network despite offline=True, which must fail the test, not count as a refusal."""
    while exc is not None:
        if isinstance(exc, NetworkLeak) or "only loopback is allowed" in str(exc):
            raise AssertionError(f"parsedmarc tried the network: {exc}")
        exc = exc.__cause__ or exc.__context__


@functools.cache
def mailsec_outcome(name: str) -> Ours:
    reports, refusals = [], []
    for item in unpack.payloads(FIXTURES / name, name):
        if isinstance(item, Refused):
            refusals.append(item.reason)
            continue
        try:
            report = parse(item)
            assert isinstance(report, AggregateReport)
            reports.append((report.meta, list(report.records())))
        except Refused as exc:
            refusals.append(exc.reason)
    return Ours(reports, refusals)


# --- what is compared -----------------------------------------------------------------------


class Key(NamedTuple):
    """A record as compared: everything but its count."""

    source_ip: str
    disposition: str
    dkim: str
    spf: str
    header_from: str
    envelope_from: str
    envelope_to: str
    dkim_results: tuple[tuple[str, str, str], ...]  # (domain, selector, result), sorted
    spf_results: tuple[tuple[str, str, str], ...]  # (domain, scope, result), sorted
    reasons: tuple[str, ...]  # the override reason types given, sorted


def _named(types) -> tuple[str, ...]:
    # An override reason without a type tells nothing to compare: parsedmarc keeps
    # <reason><type/></reason> as a null type, mailsec drops a reason with neither type nor
    # comment and keeps a comment-only one with type "".
    return tuple(sorted(kind for kind in types if kind))


def their_key(row: dict) -> Key:
    evaluated, identifiers, auth = row["policy_evaluated"], row["identifiers"], row["auth_results"]
    return Key(
        row["source"]["ip_address"],
        evaluated["disposition"],
        evaluated["dkim"],
        evaluated["spf"],
        identifiers["header_from"],
        identifiers["envelope_from"] or "",  # JSON null for an absent element
        identifiers["envelope_to"] or "",
        tuple(sorted((r["domain"], r["selector"], r["result"]) for r in auth["dkim"])),
        tuple(sorted((r["domain"], r["scope"], r["result"]) for r in auth["spf"])),
        _named(reason.get("type") for reason in evaluated["policy_override_reasons"]),
    )


def as_parsedmarc_reports(record: AggregateRecord) -> Key:
    """Our record as parsedmarc 11.1 reports it. parsedmarc fills in defaults where mailsec
    stores what the reporter wrote, which is not a mailsec error:

    - a DKIM result without a <selector>: parsedmarc writes the selector "none"; mailsec keeps
      "" (no selector was reported; "none" could be a real selector name);
    - an SPF result without a <scope>: parsedmarc writes "mfrom" (RFC 7489's default); mailsec
      keeps "" (the reporter did not say);
    - an auth result with an empty <domain>: parsedmarc drops it; mailsec keeps it when it
      carries a result (cryinc__hardfail's <dkim><result>fail, zoho's <spf> helo/none, veeam's
      <spf> none), since the result is what the reporter said;
    - no <envelope_from>: parsedmarc fills in the domain of the record's last SPF result
      (whatever its scope, empty if that one has none); mailsec stores what the report says.
    """
    spf = record.spf_results
    envelope_from = record.envelope_from or (spf[-1]["domain"] if spf else "")
    dkim_results = [
        (r["domain"], r["selector"] or "none", r["result"]) for r in record.dkim_results
    ]
    spf_results = [(r["domain"], r["scope"] or "mfrom", r["result"]) for r in spf]
    return Key(
        record.source_ip,
        record.disposition,
        record.dkim,
        record.spf,
        record.header_from,
        envelope_from,
        record.envelope_to,
        tuple(sorted(result for result in dkim_results if result[0])),
        tuple(sorted(result for result in spf_results if result[0])),
        _named(reason["type"] for reason in record.reasons),
    )


def same_org_name(ours: str, theirs: str) -> bool:
    """parsedmarc replaces an org_name that looks like a host name by its registrable domain,
    lower-cased ("mx1.action.pl" -> "action.pl", "Mail.Ru" -> "mail.ru", "ing.unipi.it" ->
    "unipi.it"); mailsec keeps the reporter's name. Both name an empty org_name after the
    e-mail domain. Anything with a space ("GMO Pepabo, Inc.") must be equal."""
    if ours == theirs:
        return True
    name = ours.lower()
    return "." in theirs and " " not in name and (name == theirs or name.endswith("." + theirs))


def local_time(moment) -> str:
    # parsedmarc writes dates in the process's local time zone, without one.
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _difference(ours: Counter, theirs: Counter) -> tuple[dict, dict]:
    """(only ours, only theirs): both empty when the multisets are equal, else the records
    that differ, so a failure shows them and not thousands of equal ones."""
    return dict(ours - theirs), dict(theirs - ours)


def _merged(rows: list[tuple[Key, int]]) -> Counter:
    """Messages per distinct record: how per-day rows and the records they came from compare."""
    total: Counter = Counter()
    for key, count in rows:
        total[key] += count
    return total


def _our_rows(name: str, records: list[AggregateRecord]) -> list[tuple[Key, int]]:
    rows = [(as_parsedmarc_reports(record), record.count) for record in records]
    if name in RECOVERED_HEADER_FROM:
        ours, theirs = RECOVERED_HEADER_FROM[name]
        assert [key.header_from for key, _ in rows] == [ours]
        rows = [(key._replace(header_from=theirs), count) for key, count in rows]
    return rows


# --- the tests ------------------------------------------------------------------------------


def test_every_fixture_is_classified_and_most_are_compared():
    assert len(FILES) == 92
    classified = set(PARSEDMARC_ONLY_REFUSES) | MAILSEC_ONLY_REFUSES | BOTH_REFUSE
    assert classified <= set(FILES)
    assert SPLIT_PER_DAY | set(RECOVERED_HEADER_FROM) <= set(COMPARED)
    assert len(COMPARED) >= 75


@pytest.mark.parametrize("name", COMPARED)
def test_mailsec_reads_what_parsedmarc_reads(name):
    theirs = parsedmarc_outcome(name)
    assert theirs.error == ""
    ours = mailsec_outcome(name)
    assert ours.refusals == []
    assert len(ours.reports) == 1
    meta, records = ours.reports[0]
    report = theirs.report
    metadata = report["report_metadata"]

    assert meta.domain == report["policy_published"]["domain"]
    assert same_org_name(meta.org_name, metadata["org_name"]), (meta.org_name, metadata)
    assert local_time(meta.begin) == metadata["begin_date"]
    assert local_time(meta.end) == metadata["end_date"]

    our_rows = _our_rows(name, records)
    their_rows = [(their_key(row), row["count"]) for row in report["records"]]
    assert metadata["timespan_requires_normalization"] is (name in SPLIT_PER_DAY)
    if name in SPLIT_PER_DAY:
        # parsedmarc's rows are per day and per record: summed per distinct record they must
        # give our records' counts, summed the same way.
        assert _difference(_merged(our_rows), _merged(their_rows)) == ({}, {})
        assert sum(count for _, count in our_rows) == sum(count for _, count in their_rows)
    else:
        assert len(our_rows) == len(their_rows)
        assert _difference(Counter(our_rows), Counter(their_rows)) == ({}, {})


@pytest.mark.parametrize("name", sorted(PARSEDMARC_ONLY_REFUSES))
def test_mailsec_reads_what_parsedmarc_refuses(name):
    assert parsedmarc_outcome(name).error
    ours = mailsec_outcome(name)
    assert ours.refusals == []
    assert len(ours.reports) == 1
    _meta, records = ours.reports[0]
    messages = sum(record.count for record in records)
    assert (len(records), messages) == PARSEDMARC_ONLY_REFUSES[name]


@pytest.mark.parametrize("name", sorted(MAILSEC_ONLY_REFUSES))
def test_mailsec_refuses_a_date_range_before_1990(name):
    theirs = parsedmarc_outcome(name)
    assert theirs.error == ""
    assert theirs.report["report_metadata"]["begin_date"] < "1990"
    ours = mailsec_outcome(name)
    assert ours.reports == []
    assert len(ours.refusals) == 1
    assert "before 1990" in ours.refusals[0]


@pytest.mark.parametrize("name", sorted(BOTH_REFUSE))
def test_both_refuse(name):
    assert parsedmarc_outcome(name).error
    ours = mailsec_outcome(name)
    assert ours.reports == []
    assert ours.refusals
