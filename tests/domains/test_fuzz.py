"""Property-based tests of what the checks parse: domain names and selectors as users type them,
DKIM key records, and SPF and DMARC records as DNS serves them (through a loopback DNS server
answering with the generated record). Whatever the input, it is accepted or refused with the
project's reason (DomainNameError, ValueError for a key, a finding for a record), never an
unexpected exception, and within a bounded time."""

import socket
import threading
import time

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domains.checks.base import Context
from domains.checks.dkim import parse_key
from domains.checks.dmarc import DmarcCheck, raw_tags
from domains.checks.spf import SpfCheck
from domains.dns import DnsSession
from domains.engine import run_one
from domains.findings import CATALOGUE
from domains.names import (
    LDH_LABEL,
    MAX_NAME_LENGTH,
    DomainNameError,
    normalize_domain,
    normalize_selector,
)

SECONDS = 5.0  # the most one input may take: milliseconds, but the machine may be loaded
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- names ------------------------------------------------------------------------------------

label_chars = st.sampled_from(
    "abcxyz019-_.*@/: \t\u00e9\u00fc\u4e2d\u0430\u200d\u00df\uff0e\u3002\uff61\u2488"
)
typed_names = st.one_of(
    st.text(max_size=300),
    st.text(label_chars, max_size=80),
    st.lists(st.text(label_chars, min_size=0, max_size=70), max_size=6).map(".".join),
)


def bounded(function, *args):
    started = time.monotonic()
    try:
        return function(*args)
    finally:
        assert time.monotonic() - started < SECONDS


@FUZZ
@given(typed_names)
def test_a_typed_domain_name_is_stored_in_one_form_or_refused_with_a_reason(raw):
    try:
        name = bounded(normalize_domain, raw)
    except DomainNameError as exc:
        assert exc.messages and all(exc.messages)
        return
    assert name == name.lower().strip() and not name.endswith(".")
    assert len(name) <= MAX_NAME_LENGTH and "." in name
    assert all(LDH_LABEL.match(label) for label in name.split("."))
    assert normalize_domain(name) == name  # the stored form is its own normal form


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        # Found by the test above: full stops other than "." were mapped to "." by IDNA inside
        # a label, after the labels were counted: "0.0\uff0e" was stored as "0.0." (a second
        # form of a name), "0\uff0e.A" as "0..a".
        ("a.example\uff0e", "a.example"),
        ("a\uff0eexample", "a.example"),
        ("x\u3002y\u3002com", "x.y.com"),
        ("b\u00fccher\uff61example", "xn--bcher-kva.example"),
        ("0.0\uff0e", None),
        ("0\uff0e.A", None),
    ],
)
def test_every_full_stop_separates_labels(raw, stored):
    if stored is None:
        with pytest.raises(DomainNameError):
            normalize_domain(raw)
    else:
        assert normalize_domain(raw) == stored


@FUZZ
@given(typed_names)
def test_a_typed_selector_is_stored_or_refused_with_a_reason(raw):
    try:
        selector = bounded(normalize_selector, raw)
    except DomainNameError as exc:
        assert exc.messages and all(exc.messages)
        return
    assert selector and normalize_selector(selector) == selector


# --- DKIM keys --------------------------------------------------------------------------------

base64ish = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= "),
    max_size=600,
)
dkim_tags = st.lists(
    st.tuples(
        st.sampled_from(["v", "k", "p", "t", "h", "s", "n", "g", "x", "V", "P", ""]),
        st.one_of(st.sampled_from(["DKIM1", "rsa", "ed25519", "y", "s:y", "", "*"]), base64ish),
    ),
    max_size=6,
).map(lambda tags: "; ".join(f"{k}={v}" for k, v in tags))


@FUZZ
@given(st.one_of(dkim_tags, st.text(max_size=400)))
def test_a_dkim_key_record_is_read_or_refused_with_a_reason(record):
    try:
        key = bounded(parse_key, record)
    except ValueError as exc:
        assert str(exc)
        return
    assert key["revoked"] or key["bits"] > 0


@FUZZ
@given(st.text(max_size=400))
def test_dmarc_tags_as_written_never_fail(record):
    tags = bounded(raw_tags, record)
    assert all(key == key.strip().lower() for key in tags)


# --- SPF and DMARC records, served by DNS -----------------------------------------------------


class RecordServer:
    """A loopback DNS server: TXT at fuzz.test and _dmarc.fuzz.test is `record`; every other
    name does not exist, except fuzz.test's other types (no data)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.record = b""
        self.asked: list[str] = []  # the names queried, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            self.asked.append(query.question[0].name.to_text())
            self.sock.sendto(self._answer(query).to_wire(), source)

    def _answer(self, query):
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name not in ("fuzz.test.", "_dmarc.fuzz.test."):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            chunks = [self.record[i : i + 255] for i in range(0, len(self.record), 255)]
            rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks or [b""])
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            rrset.add(rdata, 60)
            response.answer.append(rrset)
        return response


@pytest.fixture(scope="module")
def record_server():
    server = RecordServer()
    yield server
    server.close()


domainish = st.sampled_from(
    ["fuzz.test", "_spf.fuzz.test", "nowhere.test", "%{d}", "%{i}.%{l1r}", "", ".", "a..b", "-"]
)
usual_spf_terms = st.sampled_from(
    ["-all", "~all", "?all", "+all", "a", "mx", "ptr", "include:_spf.fuzz.test", "mx:fuzz.test/24",
     "ip4:192.0.2.0/24", "ip6:2001:db8::/32", "exists:%{i}.fuzz.test", "redirect=fuzz.test",
     "exp=explain.fuzz.test", "a:fuzz.test//64"]
)  # fmt: skip
odd_spf_terms = st.one_of(
    st.tuples(
        st.sampled_from(["", "+", "-", "~", "?", "--"]),
        st.sampled_from(["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", "bogus"]),
        st.one_of(
            st.just(""),
            domainish.map(lambda d: ":" + d),
            st.sampled_from([":192.0.2.0/24", ":10.0.0.1/33", ":2001:db8::/129", ":1.2.3", "/24"]),
        ),
    ).map("".join),
    domainish.map(lambda d: f"redirect={d}"),
    st.sampled_from(["exp=", "redirect=", "=", "v=spf1", "unknown=x"]),
    st.text(max_size=30).filter(lambda t: " " not in t),
)
spf_records = st.one_of(
    st.lists(usual_spf_terms, max_size=8).map(lambda terms: " ".join(["v=spf1", *terms])),
    st.lists(st.one_of(usual_spf_terms, usual_spf_terms, odd_spf_terms), max_size=12).map(
        lambda terms: " ".join(["v=spf1", *terms])
    ),
    st.text(max_size=200).map(lambda t: "v=spf1 " + t),
)
DMARC_VALUES = {
    "sp": ["reject", "quarantine", "none"], "np": ["reject", "none"], "pct": ["100", "50", "0"],
    "rua": ["mailto:d@fuzz.test", "mailto:d@fuzz.test!10m,mailto:e@other.test"],
    "ruf": ["mailto:f@fuzz.test"], "adkim": ["r", "s"], "aspf": ["r", "s"], "fo": ["1", "d:s"],
    "ri": ["86400"], "rf": ["afrf"], "t": ["y", "n"], "psd": ["y", "n", "u"],
}  # fmt: skip
usual_dmarc_tag = st.sampled_from(sorted(DMARC_VALUES)).flatmap(
    lambda tag: st.sampled_from(DMARC_VALUES[tag]).map(lambda value: (tag, value))
)
odd_dmarc_tag = st.tuples(
    st.sampled_from([*DMARC_VALUES, "x", "", "p", "v"]),
    st.one_of(
        st.sampled_from(["-1", "101", "https://x", "mailto:", "mailto:a@b!x", "bogus", ""]),
        st.text(max_size=20),
    ),
)
dmarc_tags = st.one_of(usual_dmarc_tag, usual_dmarc_tag, usual_dmarc_tag, odd_dmarc_tag)
dmarc_records = st.one_of(
    st.tuples(
        st.sampled_from(["reject", "quarantine", "none", "bogus", ""]),
        st.lists(dmarc_tags, max_size=6),
    ).map(lambda rt: f"v=DMARC1; p={rt[0]}" + "".join(f"; {k}={v}" for k, v in rt[1])),
    st.lists(dmarc_tags, max_size=8).map(
        lambda tags: "v=DMARC1; " + "; ".join(f"{k}={v}" for k, v in tags)
    ),
    st.text(max_size=200).map(lambda t: "v=DMARC1;" + t),
)  # fmt: skip


def check_record(record_server, check, record: str) -> None:
    """Run one check on fuzz.test serving `record`: a verdict with known findings."""
    record_server.record = record.encode()[:2000]
    session = DnsSession([record_server.address])  # retries within 3 s: no lookup may fail
    started = time.monotonic()
    result, met = run_one(check, Context(domain="fuzz.test", dns=session))
    assert time.monotonic() - started < SECONDS
    assert met == [], met  # no lookup failed
    assert result.status is not None
    ids = {f.id for f in result.findings}
    assert ids <= set(CATALOGUE) and "dns.lookup_failed" not in ids, result.findings


@FUZZ
@given(spf_records)
def test_an_spf_record_gets_a_verdict(record_server, record):
    check_record(record_server, SpfCheck(), record)


@FUZZ
@given(dmarc_records)
def test_a_dmarc_record_gets_a_verdict(record_server, record):
    check_record(record_server, DmarcCheck(), record)


@pytest.mark.parametrize(
    ("check", "before", "after", "finding_id"),
    [
        (SpfCheck(), "v=spf1 -all", "v=spf1 +all", "spf.all_pass"),
        (DmarcCheck(), "v=DMARC1; p=reject; rua=mailto:d@fuzz.test", "v=DMARC1; p=none",
         "dmarc.policy_none"),
    ],
)  # fmt: skip
def test_a_changed_record_is_judged_anew(record_server, check, before, after, finding_id):
    # Found by the tests above: checkdmarc kept answers for 30 minutes in a cache of its own,
    # so a check run again after a DNS change judged the old record.
    for record, expected in [(before, False), (after, True)]:
        record_server.record = record.encode()
        result, _ = run_one(
            check, Context(domain="fuzz.test", dns=DnsSession([record_server.address]))
        )
        assert (finding_id in {f.id for f in result.findings}) is expected, record
