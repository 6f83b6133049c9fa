"""The SPF tree walk's verdict logic without any network: DNS data in (a dict standing for the
zone), the outcome for an unlisted sender, the counted lookups and the issues out. The same
walk runs against real DNS in test_spf_tree.py."""

import dns.rrset
import pytest

from domains.checks.spf_syntax import parse
from domains.checks.spf_tree import walk
from domains.dns import Answer, LookupFailed

ZONE = {
    ("passall.example", "TXT"): ["v=spf1 +all"],
    ("fail.example", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
    ("_spf.a.example", "TXT"): ["v=spf1 ip4:192.0.2.2 -all"],
    ("host.example", "A"): ["192.0.2.10"],
    ("host.example", "AAAA"): ["2001:db8::10"],
    ("v4only.example", "A"): ["192.0.2.11"],
    ("v4only2.example", "A"): ["192.0.2.12"],
    ("v4only3.example", "A"): ["192.0.2.13"],
    ("a.example", "MX"): ["10 host.example."],
    ("a.example", "A"): ["192.0.2.20"],
}


def fake_dns(zone=ZONE, failing=()):
    asked = []

    def fetch(name, rdtype, voids):
        asked.append((name, rdtype))
        if name in failing:
            return LookupFailed(name, rdtype, "server answered SERVFAIL")
        values = zone.get((name, rdtype))
        if values is None:
            return Answer(name, rdtype, "nxdomain")
        if rdtype == "TXT":
            values = ['"' + v + '"' for v in values]
        rrset = dns.rrset.from_text(name + ".", 300, "IN", rdtype, *values)
        return Answer(name, rdtype, "ok", rrset=rrset)

    return fetch, asked


def run(record: str, domain="a.example", **options):
    fetch, asked = fake_dns(**options)
    tree = walk(domain, parse(record), fetch, lambda queries: None)
    return tree, asked


def outcome(tree) -> dict:
    return {family: (o.result, o.trail) for family, o in tree.outcome.items()}


def test_terms_after_all_are_not_evaluated_nor_counted():
    tree, asked = run("v=spf1 ip4:192.0.2.1 -all include:passall.example redirect=passall.example")
    assert tree.lookups == []
    assert asked == []
    assert outcome(tree)["IPv4"] == ("fail", "a.example -> -all")


def test_an_include_that_passes_everyone_passes_everyone_through_its_qualifier():
    tree, _ = run("v=spf1 ~include:passall.example -all")
    assert outcome(tree)["IPv4"] == ("softfail", "a.example -> ~include:passall.example -> +all")
    tree, _ = run("v=spf1 -include:passall.example")
    assert outcome(tree)["IPv6"][0] == "fail"


def test_an_include_that_fails_everyone_lets_evaluation_go_on():
    tree, _ = run("v=spf1 include:fail.example ?all")
    assert outcome(tree)["IPv4"] == ("neutral", "a.example -> ?all")
    assert len(tree.lookups) == 1


@pytest.mark.parametrize(
    ("record", "passes"),
    [
        ("v=spf1 a/0 -all", {"IPv4"}),  # a.example has only an A record
        ("v=spf1 a:host.example/0//0 -all", {"IPv4", "IPv6"}),
        ("v=spf1 a:host.example//0 -all", {"IPv6"}),
        ("v=spf1 a:nothere.example/0 -all", set()),  # no address: a void lookup, no match
        ("v=spf1 mx//0 -all", {"IPv6"}),
        ("v=spf1 mx/1 -all", set()),
        ("v=spf1 ip6:::/0 -all", {"IPv6"}),
        ("v=spf1 exists:host.example -all", {"IPv4", "IPv6"}),
        ("v=spf1 exists:%{i}.host.example -all", set()),  # depends on the sender
    ],
)
def test_catch_alls(record, passes):
    tree, _ = run(record)
    assert {f for f, o in tree.outcome.items() if o.result == "pass"} == passes


def test_a_domain_macro_is_followed():
    tree, asked = run("v=spf1 include:_spf.%{d} -all")
    assert ("_spf.a.example", "TXT") in asked
    assert tree.issues == []


def test_a_sender_macro_is_counted_but_not_followed():
    tree, asked = run("v=spf1 include:%{l}._spf.%{d} -all")
    assert (len(tree.lookups), asked, tree.issues) == (1, [], [])


def test_the_same_include_twice_counts_twice():
    record = "v=spf1 " + " ".join(["include:fail.example"] * 6) + " include:_spf.a.example" * 5
    tree, _ = run(record + " -all")
    assert len(tree.lookups) == 11
    assert [i.kind for i in tree.issues] == ["spf.too_many_lookups"]
    assert tree.issues[0].detail.endswith("a.example -> include:_spf.a.example")


def test_a_redirect_counts_and_its_record_decides():
    tree, _ = run("v=spf1 mx redirect=fail.example")
    assert len(tree.lookups) == 2
    assert outcome(tree)["IPv4"] == ("fail", "a.example -> redirect=fail.example -> -all")


def test_void_lookups_are_counted_for_each_family():
    record = "v=spf1 a:v4only.example a:v4only2.example a:v4only3.example -all"
    tree, _ = run(record)
    assert (len(tree.void["IPv4"]), len(tree.void["IPv6"])) == (0, 3)
    (issue,) = tree.issues
    assert issue.kind == "spf.too_many_void_lookups"
    assert issue.detail.startswith("3 void lookups for IPv6 senders (at most 2): ")
    assert "a.example -> a:v4only.example (AAAA v4only.example: none)" in issue.detail


def test_a_failed_lookup_is_a_temperror_there_not_a_missing_record():
    tree, _ = run("v=spf1 include:broken.example -all", failing={"broken.example"})
    assert tree.issues == []
    assert outcome(tree)["IPv4"] == ("temperror", "a.example -> include:broken.example")
    (failure, trail), *_ = tree.failures
    assert (failure.query, trail) == ("TXT broken.example", "a.example -> include:broken.example")


def test_a_long_chain_is_walked_only_so_far():
    zone = {(f"l{i}.example", "TXT"): [f"v=spf1 include:l{i + 1}.example -all"] for i in range(100)}
    tree, asked = run("v=spf1 include:l0.example -all", zone=zone)
    assert tree.walked == 41  # the domain's record and 40 includes: the cap of lookups
    assert len(asked) == 40
    assert tree.issues[0].kind == "spf.too_many_lookups"


def test_a_name_dns_cannot_be_asked_about_is_not_followed():
    fetch, asked = fake_dns()
    record = parse("v=spf1 include:foo\\bar.example -all")
    assert record.errors == []  # any visible character is a macro-literal
    tree = walk("a.example", record, fetch, lambda queries: None)
    assert (asked, tree.issues, len(tree.lookups)) == ([], [], 1)


def test_past_the_cap_terms_are_counted_but_not_asked_about():
    record = "v=spf1 " + " ".join(f"a:h{i}.example" for i in range(100)) + " -all"
    tree, asked = run(record)
    assert len(tree.lookups) == 100
    assert len(asked) == 2 * 40  # A and AAAA of the first 40
    assert tree.issues[0].detail.startswith("at least 100 DNS-querying terms (at most 10); ")
