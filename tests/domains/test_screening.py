"""Address screening of IPv6 addresses that wrap IPv4 ones: 6to4 and NAT64 forms of a private
address are refused as that address is, Teredo and local-use NAT64 always; the same function
screens probes, webhooks and report mailboxes."""

import pytest

from domains import net
from reports.mailbox import ImapSession, MailboxError, ServerSettings


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # 6to4 (RFC 3056): 2002:AABB:CCDD::/48 is the site of IPv4 AA.BB.CC.DD.
        ("2002:c0a8:0101::1", "private (6to4 of 192.168.1.1)"),
        ("2002:0a00:0001::", "private (6to4 of 10.0.0.1)"),
        ("2002:7f00:0001::1", "loopback (6to4 of 127.0.0.1)"),
        ("2002:a9fe:a9fe::", "link-local (6to4 of 169.254.169.254)"),  # cloud metadata
        ("2002:6440:0001::", "not globally routable (6to4 of 100.64.0.1)"),
        ("2002:0808:0808::1", None),  # 8.8.8.8: a public site
        # NAT64, well-known prefix (RFC 6052): the last 32 bits are the IPv4 address.
        ("64:ff9b::10.0.0.1", "private (NAT64 of 10.0.0.1)"),
        ("64:ff9b::7f00:1", "loopback (NAT64 of 127.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", "link-local (NAT64 of 169.254.169.254)"),
        ("64:ff9b::8.8.8.8", None),  # an IPv6-only network reaching a public server
        # Local-use NAT64 (RFC 8215) and Teredo (RFC 4380): whatever they carry.
        ("64:ff9b:1::a00:1", "local-use NAT64"),
        ("64:ff9b:1:ff00::808:808", "local-use NAT64"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel"),
        ("2001:0:c0a8:101::1", "Teredo tunnel"),
        # Unchanged around them.
        ("::ffff:10.0.0.1", "private"),
        ("2001:4860:4860::8888", None),
        ("2001:db8::1", "private"),
    ],
)
def test_wrapped_ipv4_addresses_are_judged_by_what_they_wrap(address, reason):
    assert net.refusal_reason(address) == reason


def test_a_host_with_only_wrapped_private_addresses_is_refused(settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    addresses = ["2002:c0a8:101::1", "64:ff9b::a00:1", "2001:0:4136:e378::1"]
    with pytest.raises(net.TargetRefused) as caught:
        net.allowed_addresses("x.example", addresses)
    assert "2002:c0a8:101::1 (private (6to4 of 192.168.1.1))" in str(caught.value)
    assert "Teredo tunnel" in str(caught.value)
    assert net.allowed_addresses("x.example", [*addresses, "64:ff9b::808:808"]) == [
        "64:ff9b::808:808"
    ]


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("2002:7f00:1::1", "loopback (6to4 of 127.0.0.1)"),
        ("64:ff9b::7f00:1", "loopback (NAT64 of 127.0.0.1)"),
    ],
)
def test_a_report_mailbox_on_a_wrapped_private_address_is_refused(settings, host, shown):
    # The mailbox is screened before any connection, by the same function: nothing is sent.
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(MailboxError) as caught:
        ImapSession.open(ServerSettings(host, 993, "implicit", "user", "secret"))
    assert caught.value.stage == "refused"
    assert shown in str(caught.value)
