"""The DNS world of the scale harness: N domains as an installation monitors them.

Most domains receive their mail at one of a few shared providers (MX on the provider's hosts,
SPF `include:` of the provider's record, which itself includes another, DKIM under the
provider's selector), publish DMARC with a report address at their own name, and sit in one
DNSSEC-signed `test` zone, as bench/bench_checks.py does. Per hundred domains:

- 2 are broken: their zone does not load, so knot answers SERVFAIL ("could not test");
- 2 are slow: the forwarder holds their answers back (`slow`, bench/dns_forwarder.py);
- 6 are misconfigured (no DMARC, `+all`, an MX host that does not exist): verdicts;
- 5 of those are "alerting": the harness gives them an earlier run with a better grade, so
  their first check raises an alert (counted at the webhook, to see none sent twice);
- and one in 500 is gone (NXDOMAIN).

Deterministic for a count: the same domains are slow or broken in every run.
"""

from dataclasses import dataclass, field

from tests.domains.dns_world import SOA, rsa_key, txt

PROVIDERS = 6  # shared mail providers
HOSTS_PER_PROVIDER = 2
SELECTORS = ["google", "selector1", "s1", "k1", "default", "mail"]


@dataclass
class World:
    zones: dict[str, str]
    broken_zones: list[str]
    domains: list[str]  # every monitored name
    slow: list[str] = field(default_factory=list)
    alerting: list[str] = field(default_factory=list)
    mx_addresses: list[str] = field(default_factory=list)


def provider_host(provider: int, n: int) -> str:
    return f"mx{n + 1}.provider{provider}.test"


def provider_address(provider: int, n: int) -> str:
    # 127.0.2.x: loopback, nothing listens on port 25, so a probe is refused at once.
    return f"127.0.2.{provider * HOSTS_PER_PROVIDER + n + 1}"


def kind_of(i: int) -> str:
    if i % 500 == 499:
        return "gone"
    return {0: "broken", 1: "broken", 2: "slow", 3: "slow"}.get(i % 100) or (
        "alerting" if 4 <= i % 100 < 9 else "misconfigured" if i % 100 == 9 else "good"
    )


def build(count: int) -> World:
    key = rsa_key(2048)
    names = [f"d{i:06d}.test" for i in range(count)]
    lines = [SOA, "ns A 127.0.0.1\n"]
    for p in range(PROVIDERS):
        for n in range(HOSTS_PER_PROVIDER):
            lines.append(f"{provider_host(p, n)}. A {provider_address(p, n)}\n")
        # The provider's SPF includes its outbound relays' record: two lookups deep.
        lines.append(
            f"_spf.provider{p}.test. TXT "
            + txt(f"v=spf1 ip4:192.0.2.{p * 16}/28 include:_relays.provider{p}.test ~all")
            + "\n"
        )
        lines.append(
            f"_relays.provider{p}.test. TXT "
            + txt(f"v=spf1 ip4:198.51.100.{p * 16}/28 -all")
            + "\n"
        )
    world = World(zones={}, broken_zones=[], domains=names)
    for i, name in enumerate(names):
        kind = kind_of(i)
        if kind == "gone":
            continue  # in no zone: NXDOMAIN
        if kind == "broken":
            world.broken_zones.append(name)
            world.zones[name] = SOA + "@ MX 10 mx1.provider0.test.\n"
            continue
        if kind == "slow":
            world.slow.append(name)
        if kind == "alerting":
            world.alerting.append(name)
        p = i % PROVIDERS
        d = f"{name}."
        mx = [provider_host(p, n) for n in range(HOSTS_PER_PROVIDER)]
        if kind == "misconfigured":
            mx = [f"mail.{name}"]  # no address: the MX points nowhere
        spf = f"v=spf1 include:_spf.provider{p}.test ~all"
        if kind in ("alerting", "misconfigured"):
            spf = "v=spf1 mx +all"
        lines += [f"\n{d} MX {10 * (n + 1)} {host}." for n, host in enumerate(mx)]
        lines += [
            f"\n{d} TXT " + txt(spf),
            f"{SELECTORS[p]}._domainkey.{d} TXT " + txt(f"v=DKIM1; k=rsa; p={key}"),
        ]
        if kind not in ("alerting", "misconfigured"):
            lines.append(
                f"_dmarc.{d} TXT " + txt(f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{name}")
            )
        lines.append("")
    world.zones["test"] = "\n".join(lines) + "\n"
    addresses = [
        provider_address(p, n) for p in range(PROVIDERS) for n in range(HOSTS_PER_PROVIDER)
    ]
    world.zones["127.in-addr.arpa"] = SOA + "".join(
        f"{'.'.join(reversed(a.split('.')[1:]))} PTR "
        f"{provider_host(i // HOSTS_PER_PROVIDER, i % HOSTS_PER_PROVIDER)}.\n"
        for i, a in enumerate(addresses)
    )
    world.mx_addresses = addresses
    return world
