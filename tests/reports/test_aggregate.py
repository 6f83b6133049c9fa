"""The DMARC aggregate report parser (reports/parsing/aggregate.py).

Every aggregate fixture that is XML (plain, or gzip/zip/double gzip unwrapped here) has an
expected outcome below; the record and message counts are the README's, counted there with
xml.etree, independently of this parser. Hostile documents are built in the tests.
"""

import datetime as dt
import gzip
import io
import re
import zipfile
from pathlib import Path

import pytest

from reports.parsing import aggregate
from reports.parsing.types import AggregateRecord, Payload, Refused, open_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports" / "aggregate"
ANON = "{}.com"  # DmarcRua files are anonymised: the policy domain is <32 hex digits>.com

# fmt: off
# file -> (records, messages, org_name, policy domain). org_name is what the reporter wrote
# (stripped); the README's last column is parsedmarc's, which lower-cases a host-like org_name
# and cuts it to its registrable domain ("mx1.action.pl" -> "action.pl"): noted where it differs.
ACCEPTED = {
    "cryinc__acme.xml": (1, 2, "acme.com", "example.com"),  # <error> kept in meta.errors
    "cryinc__aol.xml": (1, 1, "AOL", "website.com"),  # xmlns:ns1 declaration
    "cryinc__gmxnet.xml": (1, 1, "GMX", "myserver.com"),  # dmarc-2.0 namespace
    "cryinc__hardfail.xml": (1, 1, "reporting org", "mydomain.org"),  # SPF "hardfail" kept
    "cryinc__mailru.xml": (1, 1, "Mail.Ru", "foobar.de"),  # single quotes; parsedmarc: mail.ru
    "cryinc__solamora.xml": (1, 2, "solarmora.com", "bix-business.com"),  # empty human_result
    "cryinc__webde.xml": (1, 1, "WEB.DE", "foobar.com"),  # parsedmarc: web.de
    "cryinc__yahoo.xml": (1, 1, "Yahoo", "random.org"),  # trailing TABs stripped
    "djangodmarc__dmarcreport.xml": (1, 1, "Persistent Objects", "p-o.co.uk"),
    # UTF-8 BOM and a comment before the root: parsedmarc refuses it, it is a genuine report.
    "dmarcrua__TestFeedback12-bom.xml": (1, 1, "kddi.com", "domain.tld"),
    "dmarcrua__action-pl-reject_63306bcceadd43e6b25a6be210a91286.xml": (
        1, 2, "mx1.action.pl", ANON  # parsedmarc: action.pl
    ),
    "dmarcrua__amazon-ses-v0.1_87742025a4bf485a8900378f9b58a14f.xml": (1, 2, "AMAZON-SES", ANON),
    "dmarcrua__artfiles-48h_fc3ddfcb53394ed3b9a334a6e4e69abd.xml": (
        1, 1, "Artfiles New Media GmbH", ANON
    ),
    "dmarcrua__centerasecurity_4e7e68afc49a41e9afd90baa248c8a2b.xml": (
        1, 1, "centerasecurity.com", ANON  # SPF "unknown" kept
    ),
    "dmarcrua__cisco-esa-168h_ebb58dbb30c640929e459c98d75f10f1.xml": (
        1, 1, "esa2.hc1113-13.ap.iphmx.com", ANON  # parsedmarc: iphmx.com
    ),
    "dmarcrua__comcast_18c84b4985664046a75ec256a6fce850.xml": (22, 23, "comcast.net", ANON),
    # BOM and xmlns="http//dmarc.org/..." (no colon): names match on their local part, so the
    # broken namespace does not matter. parsedmarc refuses it.
    "dmarcrua__dmarc1namespace.xml": (15, 22, "example.com", "test-domain.com"),
    "dmarcrua__dmarc20namespace.xml": (2, 2, "Example Organization", "example.com"),
    "dmarcrua__emailsrvr_96aba60eee954d1aadcae1e383b59326.xml": (8, 247, "emailsrvr.com", ANON),
    "dmarcrua__enterprise-outlook_4f56e9c325864683bb0bba76fb2cfd96.xml": (
        3555, 4264, "Enterprise Outlook", ANON
    ),
    "dmarcrua__fastmail-trusted-forwarder_ce4cd321957843e9886baa01230871d8.xml": (
        5, 14, "Fastmail Pty Ltd", ANON
    ),
    "dmarcrua__gmo-pepabo_acb3eeb02ee74d68b67b5cdef91fee4a.xml": (5, 14, "GMO Pepabo, Inc.", ANON),
    # begin == end; parsedmarc: godaddy.com
    "dmarcrua__godaddy-zero-span_c9c613ec9550406096d98716e1f1bc57.xml": (1, 1, "GoDaddy.com", ANON),
    "dmarcrua__google-forwarded_e61335dd89ae443f8a04943c4b482ae1.xml": (4, 106, "google.com", ANON),
    "dmarcrua__google-np_0879962d35fc4a1cb547a22d4ff88d03.xml": (1, 58, "google.com", ANON),
    "dmarcrua__google_d5f54f9775144853a0476406958c9869.xml": (551, 6505, "google.com", ANON),
    # Four empty <dkim><domain/><result/></dkim> blocks, skipped.
    "dmarcrua__gosecure-quarantine_f318abb6d44e4aa8beaeafd1d96384a6.xml": (
        1, 1, "gosecure.net", ANON
    ),
    # Known-invalid in its repository, but only for a BOM, a comment and SPF "hardfail": all
    # reporters' quirks we accept (parsedmarc refuses it).
    "dmarcrua__invalid-docomo-hardfail_TestFeedback13.xml": (1, 1, "docomo.ne.jp", "domain.tld"),
    # Known-invalid for <sp>nil</sp>: kept as written, nothing else is wrong. parsedmarc: mail.ru
    "dmarcrua__invalid-mailru-sp-nil_ef4852c7ab724ac782795261bb5d02af.xml": (1, 1, "Mail.Ru", ANON),
    "dmarcrua__kddi_08fb1b251b5745aaa24bc88c929db090.xml": (1, 4, "kddi.com", ANON),
    "dmarcrua__mimecast_defbb7d67481485bacb983bde2c116ee.xml": (13, 28, "Mimecast", ANON),
    "dmarcrua__mtgcp-crlf_eb261bac11ca4e68b067aba0ffea578b.xml": (1, 2, "mtgcp.com", ANON),
    "dmarcrua__nemsys-mailing-list_a7d10e3ddde542888872c32845ccce2d.xml": (1, 1, "Nemsys", ANON),
    "dmarcrua__nfm-rf-ri_a12234c98b1b47e0ba478ee068d7481e.xml": (1, 1, "nfm.net", ANON),
    "dmarcrua__oneinsane-dot-org_3d75f7dc674145388ee980ff15b2112a.xml": (
        1, 1, "oneinsane dot org", ANON
    ),
    # parsedmarc: outlook.com
    "dmarcrua__outlookcom_4ef8a7d1b132413db7de4dd0a864d3cd.xml": (81, 92, "Outlook.com", ANON),
    "dmarcrua__sealy-201days_e0e17040a8e4454bbb05ed680ff5df0f.xml": (3, 5, "sealy.com.au", ANON),
    "dmarcrua__tecnocratica_c170e237c0944008a50af905399f2d6a.xml": (
        3, 5, "Tecnocratica DMARC Report", ANON
    ),
    # <identities> for <identifiers>; parsedmarc: unipi.it
    "dmarcrua__unipi-identities_2bcd8fcbd79c40f9b5b39d7ecbb5a3d8.xml": (1, 1, "ing.unipi.it", ANON),
    "dmarcrua__yahoo_ec08d26d6bee4dacbde6e5f8dfb5eb83.xml": (66, 66, "Yahoo", ANON),
    "dmarcrua__zoho-reject_7172ee2e8b0d4417a07dbd0f37747ddd.xml": (1, 1, "zoho.com", ANON),
    # Child order unlike the XSD.
    "dmarcrua__zoho_865643e5c2d74a44808cda4c36216925.xml": (7, 15, "zoho.com", ANON),
    # Empty <org_name>: named after the e-mail domain.
    "parsedmarc__!example.com!1538204542!1538463818.xml": (
        1, 1, "accurateplastics.com", "example.com"
    ),
    "parsedmarc__!large-example.com!1711897200!1711983600.xml": (
        2286, 2286, "accurateplastics.com", "example.com"
    ),
    "parsedmarc__addisonfoods.com!example.com!1536105600!1536191999.xml": (
        1, 1, "addisonfoods.com", "example.com"
    ),
    "parsedmarc__empty_reason.xml": (1, 2, "example.org", "example.com"),  # empty reason dropped
    "parsedmarc__estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip": (
        1, 1, "XYZ Corporation", "example.com"
    ),
    # Stray text "11" inside <policy_published>: ignored.
    "parsedmarc__example.net!example.com!1529366400!1529452799.xml": (
        1, 1, "example.net", "example.com"
    ),
    # The gzip member holds another domain than the file name says.
    "parsedmarc__fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz": (
        1, 1, "FastMail Pty Ltd", "indemed.com"
    ),
    # Malformed XML, recovered (with a warning): an unclosed <xs:schema> around the report, an
    # unescaped <bad-xml@...> in <email>, an invalid UTF-8 byte. None is cut short.
    "parsedmarc__ikea.com!example.de!1538690400!1538776800.xml": (1, 1, "ikea.com", "example.de"),
    "parsedmarc__invalid_utf_8.xml": (1, 1, "accurateplastics.com", "example.com"),
    "parsedmarc__invalid_xml.xml": (1, 1, "veeam.com", "example.com"),
    "parsedmarc__nice-input.xml": (20, 3047, "google.com", "example.com"),
    "parsedmarc__nice-input.xml.gz": (20, 3047, "google.com", "example.com"),
    "parsedmarc__nice-input.xml.zip": (20, 3047, "google.com", "example.com"),
    "parsedmarc__old_draft_from_wiki.xml": (1, 2, "acme.com", "example.com"),
    # parsedmarc: outlook.com
    "parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml": (
        1, 1, "Outlook.com", "example.com"
    ),
    # "Pass"/"None" lower-cased; "example.com " stripped.
    "parsedmarc__report_with_upper_cased_pass.xml": (1, 1, "example.com", "example.com"),
    "parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml": (
        2, 7, "example.net", "example.com"
    ),
    "parsedmarc__usssa.com!example.com!1538784000!1538870399.xml": (
        2, 2, "usssa.com", "example.com"
    ),
    "parsedmarc__veeam.com!example.com!1530133200!1530219600.xml": (
        1, 1, "veeam.com", "example.com"
    ),
    "parsedmarc__zoho.com!example.com!1581753600!1581840000.xml": (8, 9, "zoho.com", "example.com"),
    "tierpod__test.xml": (2, 7, "Test Inc.", "test.net"),  # "<end>1524268799 </end>"
    "tierpod__test.xml.gz.gz": (2, 7, "Test Inc.", "test.net"),  # parsedmarc refuses it
    "tierpod__test2-3year-span.xml": (2, 12, "Test Inc.", "test.net"),
}
# fmt: on

# file -> a piece of the reason it is refused for.
REFUSED = {
    # Known-invalid: a piece is cut out between <policy_published> and a record ("</spf>"
    # closes nothing that is open); recovering would store a report missing its records.
    "dmarcrua__invalid-truncated-wp.pl_0708a2ec5df54aac9c204249898d27bd.xml": "truncated XML",
    # Known-invalid: metadata and policy, not one record.
    "dmarcrua__invalid-zero-records-cwru_2cc32d95b4f142578eb7c70d3cea6219.xml": "holds no <record>",
    # Synthetic samples dated 1975, 1979 and 1970 (begin 100): no report can be that old, and a
    # date we cannot trust would put the messages on the wrong days. parsedmarc reads them.
    "mailauth__001-v2-extensions.xml": "before 1990",
    "mailauth__004-dmarc2-ns-generator.xml": "before 1990",
    "mailauth__005-sampled-out.xml": "before 1990",
    "parsedmarc__rfc9990-sample.xml": "before 1990",
    "parsedmarc__empty.xml": "empty document",  # zero bytes
    # Empty <source_ip/> and <count>0</count>: a row for no address. parsedmarc refuses it too.
    "tierpod__test_empty.xml": "record 1: no source_ip",
}
# Malformed XML, read by a recovering parse: stored with a warning.
MALFORMED = {
    "parsedmarc__ikea.com!example.de!1538690400!1538776800.xml",
    "parsedmarc__invalid_utf_8.xml",
    "parsedmarc__invalid_xml.xml",
}


def unwrapped(name: str) -> bytes:
    """A fixture's XML, out of its gzip or zip container (unpack.py does this in production)."""
    data = (FIXTURES / name).read_bytes()
    if name.endswith(".gz.gz"):
        return gzip.decompress(gzip.decompress(data))
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            [member] = archive.namelist()
            return archive.read(member)
    return data


def parse_all(data: bytes) -> tuple[aggregate.AggregateMeta, list[AggregateRecord]]:
    report = aggregate.parse(Payload("report.xml", "xml", open_bytes(data)))
    return report.meta, list(report.records())


def refusal(data: bytes) -> str:
    with pytest.raises(Refused) as caught:
        parse_all(data)
    return caught.value.reason


def fixture(name: str) -> tuple[aggregate.AggregateMeta, list[AggregateRecord]]:
    return parse_all(unwrapped(name))


# --- every fixture ----------------------------------------------------------------------------


def test_every_xml_fixture_has_an_expected_outcome():
    xml = {path.name for path in FIXTURES.iterdir() if not path.name.endswith(".eml")}
    assert len(xml) == 73
    assert set(ACCEPTED) | set(REFUSED) == xml
    assert not set(ACCEPTED) & set(REFUSED)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_fixture_is_read(name):
    records_wanted, messages, org_name, domain = ACCEPTED[name]
    meta, records = fixture(name)
    if domain == ANON:
        domain = name.rpartition("_")[2].removesuffix(".xml") + ".com"
    assert (len(records), sum(r.count for r in records)) == (records_wanted, messages)
    assert (meta.org_name, meta.domain) == (org_name, domain)
    recovered = [w for w in meta.warnings if w.startswith("malformed XML recovered: ")]
    assert bool(recovered) == (name in MALFORMED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_fixture_is_refused(name):
    assert REFUSED[name] in refusal(unwrapped(name))


def test_recovered_documents_say_what_was_wrong():
    meta, _ = fixture("parsedmarc__ikea.com!example.de!1538690400!1538776800.xml")
    assert meta.warnings == [
        "the report is wrapped in an <xs:schema> element",
        "malformed XML recovered: Premature end of data in tag schema line 1, line 47, column 12",
    ]
    meta, records = fixture("parsedmarc__invalid_xml.xml")
    assert meta.warnings == [
        "malformed XML recovered: error parsing attribute name, line 5, column 18"
    ]
    assert (meta.email, records[0].source_ip) == ("", "199.230.200.36")


# --- fields -----------------------------------------------------------------------------------


def test_rfc9990_policy_fields_and_version():
    meta, records = fixture("parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml")
    assert (meta.version, meta.report_id) == ("2.0", "dmarcbis-test-report-001")
    assert (meta.adkim, meta.aspf, meta.p, meta.sp, meta.np) == (
        "s",
        "s",
        "reject",
        "quarantine",
        "reject",
    )
    assert (meta.testing, meta.discovery_method, meta.fo, meta.pct) == ("y", "treewalk", "1", None)
    assert meta.begin == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert meta.end == dt.datetime(2023, 11, 15, 22, 13, 19, tzinfo=dt.UTC)
    assert records[1] == AggregateRecord(
        "203.0.113.10", 2, "reject", "fail", "fail", "example.com", "spoofed.example.com", "",
        [{"type": "other", "comment": "sender not authorized"}],
        [],
        [{"domain": "spoofed.example.com", "scope": "mfrom", "result": "fail", "human_result": ""}],
    )  # fmt: skip

    meta, _ = fixture("cryinc__gmxnet.xml")
    assert (meta.version, meta.discovery_method, meta.testing, meta.np) == ("1.0", "psl", "n", "")
    assert meta.extra_contact_info == "https://postmaster.gmx.net/en/case?c=r2002"


def test_rfc9990_generator_and_the_old_disposition_pass():
    # The RFC 9990 appendix sample, with its 1979 dates moved to 2023 (refused as they are).
    data = unwrapped("parsedmarc__rfc9990-sample.xml")
    data = data.replace(b"302832000", b"1700000000").replace(b"302918399", b"1700086399")
    meta, [record] = parse_all(data)
    assert meta.generator == "Example DMARC Aggregate Reporter v1.2"
    assert (meta.version, meta.np, meta.testing, meta.discovery_method) == (
        "1.0", "none", "n", "treewalk"
    )  # fmt: skip
    assert (record.disposition, record.count, record.dkim_results[0]["selector"]) == (
        "pass", 123, "abc123"
    )  # fmt: skip


def test_extensions_and_unknown_elements_are_ignored():
    data = unwrapped("mailauth__001-v2-extensions.xml")
    data = data.replace(b"161212415", b"1700000000").replace(b"161221511", b"1700086399")
    assert b"<extensions>" in data and b"<unknown-tag1>" in data
    meta, records = parse_all(data)
    assert (meta.version, meta.p, len(records), records[0].count) == ("2.0", "quarantine", 1, 123)


def test_identities_is_read_as_identifiers():
    _, [record] = fixture("dmarcrua__unipi-identities_2bcd8fcbd79c40f9b5b39d7ecbb5a3d8.xml")
    assert record.header_from == "2bcd8fcbd79c40f9b5b39d7ecbb5a3d8.com"


def test_results_outside_the_rfc_vocabulary_are_kept():
    _, [record] = fixture("cryinc__hardfail.xml")
    assert [r["result"] for r in record.spf_results] == ["hardfail"]
    assert record.dkim_results == [
        {"domain": "", "selector": "", "result": "fail", "human_result": ""}
    ]
    _, [record] = fixture("dmarcrua__nfm-rf-ri_a12234c98b1b47e0ba478ee068d7481e.xml")
    assert record.dkim_results[0]["result"] == "invalid"
    meta, _ = fixture("dmarcrua__invalid-mailru-sp-nil_ef4852c7ab724ac782795261bb5d02af.xml")
    assert meta.sp == "nil"


def test_upper_case_words_are_lower_cased():
    _, [record] = fixture("parsedmarc__report_with_upper_cased_pass.xml")
    assert (record.disposition, record.dkim, record.spf) == ("none", "pass", "pass")
    assert record.dkim_results[0]["result"] == record.spf_results[0]["result"] == "pass"
    assert record.dkim_results[0]["human_result"] == "verify result: all signatures verified"


def test_trailing_tabs_are_stripped():
    meta, [record] = fixture("cryinc__yahoo.xml")
    assert (meta.org_name, meta.report_id, meta.p) == ("Yahoo", "1709600619.487850", "reject")
    assert (record.source_ip, record.header_from) == ("1.2.3.4", "random.org")


def test_empty_auth_results_and_reasons_are_skipped():
    _, [record] = fixture("dmarcrua__gosecure-quarantine_f318abb6d44e4aa8beaeafd1d96384a6.xml")
    assert record.dkim_results == []
    assert len(record.spf_results) == 3
    _, [record] = fixture("parsedmarc__empty_reason.xml")
    assert record.reasons == []


def test_override_reasons():
    _, records = fixture(
        "dmarcrua__fastmail-trusted-forwarder_ce4cd321957843e9886baa01230871d8.xml"
    )
    kinds = {reason["type"] for record in records for reason in record.reasons}
    assert kinds == {"mailing_list", "trusted_forwarder"}
    _, records = fixture("dmarcrua__google-forwarded_e61335dd89ae443f8a04943c4b482ae1.xml")
    assert records[0].reasons == [
        {
            "type": "forwarded",
            "comment": "looks forwarded, downgrade to quarantine with phishing warning",
        }
    ]


def test_several_dkim_results_and_envelope_to():
    _, records = fixture("dmarcrua__mimecast_defbb7d67481485bacb983bde2c116ee.xml")
    assert [r["selector"] for r in records[1].dkim_results] == [
        "selector2-pnfatl-onmicrosoft-com",
        "rmk",
        "k1",
    ]
    assert [r["result"] for r in records[1].dkim_results] == ["pass", "fail", "fail"]
    _, [record] = fixture("dmarcrua__kddi_08fb1b251b5745aaa24bc88c929db090.xml")
    assert record.envelope_to == "08fb1b251b5745aaa24bc88c929db090.com"
    assert record.dkim_results[0]["human_result"] == "2048-bit key"
    _, records = fixture("dmarcrua__enterprise-outlook_4f56e9c325864683bb0bba76fb2cfd96.xml")
    assert all(record.envelope_to for record in records)
    assert sum(len(record.dkim_results) >= 2 for record in records) == 3533


def test_errors_element():
    meta, [record] = fixture("cryinc__acme.xml")
    assert meta.errors == ["There was a sample error."]
    assert record.reasons == [
        {"type": "other", "comment": "DMARC Policy overridden for incoherent example."}
    ]


# --- documents built here ---------------------------------------------------------------------


def xml_record(ip="192.0.2.1", count="1", extra="") -> str:
    return (
        f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
        "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>"
        "</row><identifiers><header_from>example.com</header_from></identifiers><auth_results>"
        "<dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>"
        f"<spf><domain>example.com</domain><result>softfail</result></spf>{extra}</auth_results>"
        "</record>"
    )


def report(
    records: str | None = None,
    *,
    org="Example Reporter",
    email="dmarc@reporter.example",
    report_id="r-1",
    begin="1700000000",
    end="1700086399",
    policy="<domain>example.com</domain><p>none</p>",
    prolog='<?xml version="1.0" encoding="UTF-8"?>\n',
) -> bytes:
    return (
        f"{prolog}<feedback><report_metadata><org_name>{org}</org_name><email>{email}</email>"
        f"<report_id>{report_id}</report_id><date_range><begin>{begin}</begin><end>{end}</end>"
        f"</date_range></report_metadata><policy_published>{policy}</policy_published>"
        f"{xml_record() if records is None else records}</feedback>"
    ).encode()


def test_a_minimal_report():
    meta, [record] = parse_all(report())
    assert (meta.org_name, meta.report_id, meta.domain, meta.p, meta.pct) == (
        "Example Reporter", "r-1", "example.com", "none", None
    )  # fmt: skip
    assert record == AggregateRecord(
        "192.0.2.1", 1, "none", "pass", "fail", "example.com", "", "", [],
        [{"domain": "example.com", "selector": "s1", "result": "pass", "human_result": ""}],
        [{"domain": "example.com", "scope": "", "result": "softfail", "human_result": ""}],
    )  # fmt: skip


def test_report_id_in_angle_brackets():
    meta, _ = parse_all(report(report_id=" &lt;1234.abcd@reporter.example&gt; "))
    assert meta.report_id == "1234.abcd@reporter.example"


def test_report_id_is_required():
    assert refusal(report(report_id="")) == "the report has no report_id"
    assert "longer than 255" in refusal(report(report_id="x" * 256))


def test_org_name_falls_back_to_the_email_domain():
    meta, _ = parse_all(report(org=""))
    assert meta.org_name == "reporter.example"
    assert "no org_name" in refusal(report(org=" ", email=""))


def test_policy_domain_is_normalised():
    meta, _ = parse_all(report(policy="<domain> Bücher.Example. </domain><p>Reject</p>"))
    assert (meta.domain, meta.p) == ("xn--bcher-kva.example", "reject")


def test_policy_domain_must_be_a_domain_name():
    assert "no policy domain" in refusal(report(policy="<p>none</p>"))
    assert "no policy domain" in refusal(report(policy="<domain> </domain>"))
    reason = refusal(report(policy="<domain>exa mple.com</domain>"))
    assert reason.startswith("policy_published domain 'exa mple.com' is not a domain name")


def test_pct_out_of_range_is_dropped_with_a_warning():
    meta, _ = parse_all(report(policy="<domain>example.com</domain><pct>150</pct>"))
    assert meta.pct is None
    assert meta.warnings == ["pct '150' ignored: not a whole number from 0 to 100"]
    meta, _ = parse_all(report(policy="<domain>example.com</domain><pct> 5 </pct>"))
    assert (meta.pct, meta.warnings) == (5, [])


def test_record_values_are_normalised():
    record = (
        "<record><row><source_ip> 2001:DB8:0:0:0:0:0:1\t</source_ip><count> 7 </count>"
        "<policy_evaluated><disposition>Quarantine </disposition><dkim>FAIL</dkim>"
        "<spf>Pass</spf></policy_evaluated></row><identifiers><envelope_to>to.example"
        "</envelope_to><header_from> example.com </header_from></identifiers></record>"
    )
    _, [parsed] = parse_all(report(record))
    assert (parsed.source_ip, parsed.count, parsed.disposition, parsed.dkim, parsed.spf) == (
        "2001:db8::1", 7, "quarantine", "fail", "pass"
    )  # fmt: skip
    assert (parsed.header_from, parsed.envelope_to) == ("example.com", "to.example")
    _, [parsed] = parse_all(report(xml_record(ip="::ffff:192.0.2.9")))
    assert parsed.source_ip == "192.0.2.9"


def test_a_value_is_the_leading_text_of_its_element_as_lxml_reads_it():
    # records.pyx walks libxml2's nodes itself: CDATA, character references and a comment
    # inside a value read as lxml's .text does; text after a child element is not the value.
    record = (
        "<record><row><source_ip><![CDATA[192.0.2.]]>7</source_ip><count>1<!-- one --></count>"
        "<policy_evaluated><disposition>n&#111;ne</disposition><dkim>pass</dkim>"
        "<spf>fail</spf></policy_evaluated></row><identifiers><header_from>ex&amp;ample.com"
        "</header_from><envelope_from>a.example<x>b.example</x>c.example</envelope_from>"
        "</identifiers><auth_results><dkim><domain><![CDATA[example.com]]></domain>"
        "<selector>s<!-- -->1</selector><result>pass</result></dkim></auth_results></record>"
    )
    _, [parsed] = parse_all(report(record))
    assert (parsed.source_ip, parsed.count, parsed.disposition) == ("192.0.2.7", 1, "none")
    assert (parsed.header_from, parsed.envelope_from) == ("ex&ample.com", "a.example")
    assert parsed.dkim_results == [
        {"domain": "example.com", "selector": "s1", "result": "pass", "human_result": ""}
    ]


def test_names_in_the_wrong_section_are_not_taken():
    # <selector> belongs to a DKIM result, <scope> to an SPF one, <type> to a <reason>.
    record = xml_record(
        extra="<dkim><domain>d.example</domain><scope>helo</scope><result>fail</result></dkim>"
        "<spf><domain>s.example</domain><selector>s9</selector><result>pass</result></spf>"
        "<type>forwarded</type>"
    )
    _, [parsed] = parse_all(report(record))
    assert parsed.dkim_results[1] == {
        "domain": "d.example", "selector": "", "result": "fail", "human_result": ""
    }  # fmt: skip
    assert parsed.spf_results[1] == {
        "domain": "s.example", "scope": "", "result": "pass", "human_result": ""
    }  # fmt: skip
    assert parsed.reasons == []


def test_prefixed_names_and_a_crlf_document_read_the_same():
    plain = report(xml_record() + xml_record(ip="192.0.2.2", count="3"))
    prefixed = re.sub(rb"<(/?)(\w)", rb"<\1d:\2", plain)
    prefixed = prefixed.replace(b"<d:feedback>", b'<d:feedback xmlns:d="urn:example:dmarc">')
    assert b"<d:source_ip>" in prefixed and b"</d:record>" in prefixed
    crlf = plain.replace(b"><", b">\r\n  <")
    assert parse_all(prefixed) == parse_all(plain) == parse_all(crlf)


def test_metadata_after_the_records_is_waited_for():
    data = (
        "<feedback>" + xml_record() + xml_record(ip="192.0.2.2")
        + "<policy_published><domain>example.com</domain></policy_published>"
        "<report_metadata><org_name>Late</org_name><report_id>late-1</report_id><date_range>"
        "<begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>"
        "</feedback>"
    ).encode()  # fmt: skip
    meta, records = parse_all(data)
    assert (meta.org_name, [r.source_ip for r in records]) == ("Late", ["192.0.2.1", "192.0.2.2"])


def test_too_many_records_before_the_metadata():
    data = ("<feedback>" + xml_record() * 10_001 + "</feedback>").encode()
    assert "more than 10000 records before the report's metadata" in refusal(data)


def test_a_record_outside_feedback_is_not_counted():
    extension = "<extensions><record><row><source_ip>x</source_ip></row></record></extensions>"
    _, records = parse_all(report(xml_record() + extension))
    assert len(records) == 1


# --- refused ----------------------------------------------------------------------------------


def test_negative_count_names_the_record():
    data = report(xml_record() + xml_record() + xml_record(count="-5"))
    assert refusal(data) == "record 3: count '-5' is not a non-negative whole number"
    assert "count 'lots' is not" in refusal(report(xml_record(count="lots")))
    assert "count '' is not" in refusal(report(xml_record(count="")))
    assert "implausibly large" in refusal(report(xml_record(count="99999999999999")))


@pytest.mark.parametrize(
    "block",
    [
        "<dkim><domain>d.example</domain><result>pass</result></dkim>",
        "<spf><domain>s.example</domain><result>pass</result></spf>",
    ],
)
def test_a_record_holds_at_most_100_auth_results(block):
    # xml_record() already holds one DKIM and one SPF result.
    _, [parsed] = parse_all(report(xml_record(extra=block * 99)))
    assert len(parsed.dkim_results) + len(parsed.spf_results) == 101
    data = report(xml_record() + xml_record(extra=block * 100))
    assert refusal(data) == "record 2: more than 100 reasons or DKIM/SPF results"


def test_a_record_holds_at_most_100_reasons():
    reason = "<reason><type>forwarded</type></reason>"
    many = xml_record().replace("</policy_evaluated>", reason * 101 + "</policy_evaluated>")
    assert refusal(report(many)) == "record 1: more than 100 reasons or DKIM/SPF results"
    _, [parsed] = parse_all(report(many.replace(reason, "", 1)))
    assert len(parsed.reasons) == 100


def test_source_ip_must_be_an_address():
    assert refusal(report(xml_record(ip="999.1.1.1"))) == (
        "record 1: source_ip '999.1.1.1' is not an IP address"
    )
    assert "is not an IP address" in refusal(report(xml_record(ip="mail.example.com")))
    assert "is not an IP address" in refusal(report(xml_record(ip="fe80::1%eth0")))
    assert refusal(report(xml_record(ip=""))) == "record 1: no source_ip"
    assert refusal(report(xml_record(ip=" \t"))) == "record 1: no source_ip"


def test_no_records():
    assert refusal(report("")) == "the report holds no <record>"


def test_missing_metadata():
    data = b"<feedback><policy_published><domain>example.com</domain></policy_published></feedback>"
    assert refusal(data) == "the report has no <report_metadata>"


def test_dates_must_be_plausible_epoch_seconds():
    assert "begin 'yesterday' is not a whole number of seconds" in refusal(
        report(begin="yesterday")
    )
    assert "is not a whole number" in refusal(report(end="1700086399.5"))
    assert "is not a whole number" in refusal(report(begin="-5"))
    assert "no date_range <end>" in refusal(report(end=""))
    assert "(1970-01-02) is before 1990" in refusal(report(begin="86400"))
    assert "begin 4102444800 is in the future" in refusal(report(begin="4102444800"))
    assert "is in the future" in refusal(report(end="9" * 40))
    assert "date_range end (2023-11-13 22:13) is before begin" in refusal(report(end="1699913600"))
    meta, _ = parse_all(report(begin=" 1700000000\t", end="1700000000 "))
    assert meta.begin == meta.end == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)


def test_not_a_dmarc_report():
    assert refusal(b"<foo><bar/></foo>") == "XML but not a DMARC aggregate report (root <foo>)"
    assert refusal(b'<x:foo xmlns:x="urn:x"/>') == (
        "XML but not a DMARC aggregate report (root <foo>)"
    )
    assert refusal(b"hello, world").startswith("not XML: Start tag expected, '<' not found")
    assert refusal(b"") == "empty document"
    assert refusal(b"\xef\xbb\xbf \r\n\t") == "empty document"


def test_an_html_page():
    page = b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body><p>Hi</p></body></html>"
    assert refusal(page) == "an HTML page, not a DMARC aggregate report"
    page = b"<html><body><p>Hi<br></p></body></html>"
    assert refusal(page) == "XML but not a DMARC aggregate report (root <html>)"


def test_truncated_documents_are_not_recovered():
    whole = report(xml_record() * 3)
    for cut in (len(whole) - 5, len(whole) // 2, whole.index(b"<record>") + 20):
        assert refusal(whole[:cut]).startswith("truncated XML: ")
