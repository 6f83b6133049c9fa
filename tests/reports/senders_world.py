"""Reverse and forward DNS for the source addresses of the fixture reports the senders tests
import (tests/fixtures/reports/aggregate/parsedmarc__nice-input.xml, parsedmarc__zoho...,
parsedmarc__protection.outlook...), served by the tests' knot on loopback (tests/conftest.py).

The names are shaped like those the real senders use (Google's mail-sor-f*, Amazon SES's
a*.smtp-out.amazonses.com, Cisco's esa*.iphmx.com), so grouping meets realistic names:
- Google's IPv4 and IPv6 addresses: PTR names forward-confirmed, one service;
- Amazon SES: eleven addresses, two /24 blocks, one service;
- Cisco (iphmx.com): confirmed, but one address's name does not resolve back (it is then
  grouped by its /24, name shown unconfirmed);
- 100.24.188.149: no PTR record at all (its zone exists): grouped as 100.24.188.0/24.
"""

SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"

GOOGLE = {
    "209.85.220.41": "mail-sor-f41.google.com",
    "209.85.220.55": "mail-sor-f55.google.com",
    "209.85.220.69": "mail-sor-f69.google.com",
}
GOOGLE_V6 = ("2607:f8b0:4864:20::132", "mail-io1-xd32.google.com")
SES = {
    f"54.240.{block}.{host}": f"a{block}-{host}.smtp-out.amazonses.com"
    for block, hosts in ((48, (90, 92, 93, 94, 95, 110)), (8, (31, 33, 83, 88, 96)))
    for host in hosts
}
CISCO = {
    f"216.71.{block}.{host}": f"esa{n}.hc3370-68.iphmx.com"
    for n, (block, host) in enumerate(
        [(143, 52), (143, 62), (143, 87), (143, 97), (146, 18), (146, 224), (148, 142)], start=1
    )
}
UNCONFIRMED = ("216.71.148.247", "esa9.hc3370-68.iphmx.com")  # no A record for the name
NO_PTR = "100.24.188.149"


def _reverse_v4(addresses: dict[str, str], first: str) -> str:
    lines = [SOA]
    for ip, name in addresses.items():
        a, b, c, d = ip.split(".")
        assert a == first
        lines.append(f"{d}.{c}.{b} PTR {name}.\n")
    return "".join(lines)


def _forward(addresses: dict[str, str], origin: str) -> str:
    lines = [SOA]
    for ip, name in addresses.items():
        rdtype = "AAAA" if ":" in ip else "A"
        lines.append(f"{name.removesuffix('.' + origin)} {rdtype} {ip}\n")
    return "".join(lines)


def zones() -> dict[str, str]:
    v6_zone = "0.2.0.0.4.6.8.4.0.b.8.f.7.0.6.2.ip6.arpa"  # 2607:f8b0:4864:20::/64
    v6_owner = "2.3.1.0.0.0.0.0.0.0.0.0.0.0.0.0"
    cisco_reverse = CISCO | {UNCONFIRMED[0]: UNCONFIRMED[1]}
    return {
        "209.in-addr.arpa": _reverse_v4(GOOGLE, "209"),
        "54.in-addr.arpa": _reverse_v4(SES, "54"),
        "216.in-addr.arpa": _reverse_v4(cisco_reverse, "216"),
        "100.in-addr.arpa": SOA,
        v6_zone: SOA + f"{v6_owner} PTR {GOOGLE_V6[1]}.\n",
        "google.com": _forward(GOOGLE | {GOOGLE_V6[0]: GOOGLE_V6[1]}, "google.com"),
        "amazonses.com": _forward(SES, "amazonses.com"),
        "iphmx.com": _forward(CISCO, "iphmx.com"),
    }
