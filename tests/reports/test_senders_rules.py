"""The pure parts of the senders: classification rules (a table), the policy ladder, a
readiness example worked out by hand, the service data and address blocks. No network."""

import ipaddress
from dataclasses import dataclass, field

import pytest

from reports.senders.classify import Classification, Numbers, classify
from reports.senders.readiness import DnsFacts, Policy, assess, next_step
from reports.senders.services import block_of, sender_of, service_for, services

A, F, FA, S = (
    Classification.AUTHORISED,
    Classification.FORWARDED,
    Classification.FAILING_AUTHORISED,
    Classification.SUSPICIOUS,
)

# messages, dmarc_pass, spf_aligned, dkim_aligned, mark, known service, forwarding service
RULES = [
    ("ours, passing", (100, 99, 99, 90), "ours", True, False, A),
    ("ours, failing both", (100, 10, 5, 5), "ours", True, False, FA),
    ("ours, exactly half passing is not most", (100, 50, 50, 0), "ours", False, False, FA),
    ("ours, DKIM only, unknown host", (100, 100, 0, 100), "ours", False, False, A),
    ("known ESP, DKIM only", (100, 100, 0, 100), None, True, False, A),
    ("unknown host, DKIM only: forwarding", (100, 100, 0, 100), None, False, False, F),
    ("unknown host, SPF and DKIM", (100, 100, 100, 100), None, False, False, A),
    ("mailing list failing both", (100, 0, 0, 0), None, True, True, F),
    ("forwarder marked not ours", (100, 0, 0, 0), "not_ours", True, True, F),
    ("not ours, passing", (100, 100, 100, 100), "not_ours", True, False, S),
    ("not ours, DKIM only, unknown host", (100, 100, 0, 100), "not_ours", False, False, F),
    ("unknown, failing both", (100, 2, 1, 1), None, False, False, S),
    ("known service unmarked, failing", (100, 0, 0, 0), None, True, False, S),
    ("no messages", (0, 0, 0, 0), None, False, False, S),
]


@pytest.mark.parametrize(
    ("numbers", "mark", "known", "forwards", "expected"),
    [row[1:] for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_classification_rules(numbers, mark, known, forwards, expected):
    got = classify(Numbers(*numbers), mark=mark, known_service=known, forwarding_service=forwards)
    assert got == expected


@pytest.mark.parametrize(
    ("policy", "step"),
    [
        (Policy("none"), "p=quarantine"),
        (Policy(""), "p=quarantine"),  # unknown: as if none
        (Policy("quarantine", pct=25), "pct=100 (p=quarantine)"),
        (Policy("quarantine", pct=100), "p=reject"),
        (Policy("reject", pct=50), "pct=100 (p=reject)"),
        (Policy("reject", "none", 100), "sp=reject"),
        (Policy("reject", "quarantine"), "sp=reject"),
        (Policy("reject", "reject", 100), None),
        (Policy("reject"), None),
    ],
)
def test_the_policy_ladder(policy, step):
    found = next_step(policy)
    assert (found.change if found else None) == step


@dataclass
class Row:
    label: str
    messages: int
    dmarc_pass: int
    spf_aligned: int
    dkim_aligned: int
    classification: Classification
    mark: str | None = None
    quarantined: int = 0
    rejected: int = 0
    base_domains: set = field(default_factory=set)


def test_readiness_matches_a_hand_computed_example():
    """1,000 messages under p=none:
    - Google Workspace, ours: 900, 898 pass           -> 2 fail (legitimate)
    - Mailchimp, ours: 50, 10 pass, DKIM 0, SPF 10     -> 40 fail (legitimate, failing authorised)
    - a forwarder: 30, 30 pass                         -> 0 fail
    - 192.0.2.0/24, unmarked: 20, 0 pass               -> 20 fail (the rest)
    Stepping to p=quarantine affects 2 + 40 + 20 = 62 messages (6.2%): 42 legitimate (4.2%,
    above the 1% a step is advised at), 20 the rest, all from unmarked senders."""
    senders = [
        Row("Google Workspace", 900, 898, 890, 898, A, "ours", base_domains={"google.com"}),
        Row("Mailchimp", 50, 10, 10, 0, FA, "ours", base_domains={"mcsv.net"}),
        Row("Forwarder", 30, 30, 0, 30, F),
        Row("192.0.2.0/24", 20, 0, 0, 0, S),
    ]
    facts = DnsFacts(
        spf_record="v=spf1 include:_spf.google.com -all",
        dkim_keys=frozenset({"google"}),
        reported_selectors=("google", "k1"),
        findings={"dkim.weak_key": 7, "spf.neutral_all": 9},
        checked=True,
    )
    r = assess(senders, Policy("none"), facts)
    assert (r.messages, r.dmarc_pass, r.affected) == (1000, 938, 62)
    assert (r.legitimate, r.spoofing, r.unmarked_failing) == (42, 20, 20)
    assert r.share == pytest.approx(6.2)
    assert r.step.change == "p=quarantine"
    [mailchimp] = r.failing_authorised
    assert (mailchimp.label, mailchimp.messages) == ("Mailchimp", 40)
    texts = [c.text for c in mailchimp.causes]
    assert texts == [
        "DKIM not aligned: not signed with your domain (selector k1 seen in reports, no key "
        "found for it)",
        "SPF include missing: your SPF record does not name mcsv.net",
    ]
    assert [(c.finding, c.finding_pk) for c in mailchimp.causes] == [
        ("dkim.weak_key", 7),
        ("spf.neutral_all", 9),
    ]
    assert r.recommendation.startswith(
        "Not yet: 42 messages (4.2%) from your own senders would be quarantined. Fix Mailchimp "
        "(DKIM not aligned; SPF include missing) first, then move to p=quarantine."
    )
    data = r.as_json()
    assert data["policy"] == "p=none" and data["next_step"] == "p=quarantine"
    assert (data["affected"], data["share"], data["messages"]) == (62, 6.2, 1000)
    assert data["failing_authorised"][0]["sender"] == "Mailchimp"

    # Once Mailchimp signs (38 of its 40 failures gone): 4 legitimate failures, 0.4%.
    senders[1] = Row("Mailchimp", 50, 48, 10, 48, A, "ours")
    r = assess(senders, Policy("none"), facts)
    assert (r.affected, r.legitimate, r.spoofing) == (24, 4, 20)
    assert r.recommendation == (
        "Move to p=quarantine: 97.6% of your mail passes DMARC. 20 failing messages come from "
        "senders nobody marked: mark those that are yours."
    )


def test_pct_step_counts_only_failing_mail_that_was_delivered():
    senders = [Row("x", 100, 60, 60, 0, S, quarantined=30)]
    r = assess(senders, Policy("quarantine", pct=50), DnsFacts())
    assert (r.step.change, r.affected, r.spoofing) == ("pct=100 (p=quarantine)", 10, 10)


def test_no_reports_and_the_top_of_the_ladder():
    assert assess([], Policy("none"), DnsFacts()).recommendation.startswith("No DMARC aggregate")
    top = assess([Row("x", 10, 10, 10, 10, A)], Policy("reject", "reject", 100), DnsFacts())
    assert top.step is None and top.recommendation.startswith("Nothing stricter")


def test_the_service_data_names_the_big_senders():
    assert len(services()) > 38_000
    assert service_for("amazonses.com").name == "Amazon SES"
    assert service_for("mcsv.net").type == "Marketing"
    assert service_for("pobox.com").forwards  # reports/data/forwarders.csv
    assert service_for("") is None and service_for("no-such-base.example") is None


@pytest.mark.parametrize(
    "ip",
    ["0.0.0.0", "9.9.9.9", "10.0.0.1", "100.64.1.2", "199.249.250.251", "255.255.255.255",  # noqa: S104
     "2001:db8:1:2::3", "::ffff:192.0.2.1", "::1", "fe80::1"],
)  # fmt: skip
def test_the_quick_ipv4_block_is_the_one_ipaddress_gives(ip):
    network = ipaddress.ip_network(f"{ip}/{24 if '.' in ip and ':' not in ip else 48}", False)
    assert block_of(ip) == str(network)


def test_a_dotted_quad_not_in_canonical_form_is_not_taken_for_one():
    for ip in ["192.0.2.077", "256.1.1.1", "1.2.3", "1.2.3.4.5", "١٢.0.0.1"]:
        with pytest.raises(ValueError):
            block_of(ip)


def test_senders_are_services_base_domains_or_blocks():
    assert block_of("192.0.2.77") == "192.0.2.0/24"
    assert block_of("2001:db8:1:2::3") == "2001:db8:1::/48"
    assert sender_of("54.240.8.31", "amazonses.com", True).key == "service:Amazon SES"
    assert sender_of("198.51.100.1", "example.net", True).key == "domain:example.net"
    # A name that does not resolve back proves nothing: grouped by its block.
    assert sender_of("198.51.100.1", "amazonses.com", False).key == "net:198.51.100.0/24"
