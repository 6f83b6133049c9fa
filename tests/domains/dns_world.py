"""The test zones: every case of the DNS checks, served by a real knot on loopback.

Each case is its own organisational domain under `test`, so DMARC's tree walk and the
organisational-domain fallback behave as on the internet. The mail hosts live in
`mailhost.test`, with reverse zones for their loopback addresses.
"""

import base64
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"


def txt(value: str) -> str:
    """A TXT rdata, split into strings of at most 255 bytes (RFC 1035 3.3.14)."""
    chunks = [value[i : i + 250] for i in range(0, len(value), 250)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


@cache
def rsa_key(bits: int) -> str:
    if bits >= 1024:
        public = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    else:  # cryptography makes no keys this weak; a public key needs only a modulus that size
        public = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0xF00D_F00D_F00D | 1).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@cache
def ed25519_key() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def good(domain: str, *, skip: tuple[str, ...] = (), **override) -> str:
    """A well-configured domain; `override` replaces a part, `skip` leaves parts out."""
    parts = {
        "mx": f"{domain}. MX 10 mx.mailhost.test.",
        "spf": f"{domain}. TXT " + txt("v=spf1 mx -all"),
        "dmarc": f"_dmarc.{domain}. TXT " + txt(f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"),
        "dkim": f"sel1._domainkey.{domain}. TXT " + txt(f"v=DKIM1; k=rsa; p={rsa_key(2048)}"),
        "tls_rpt": f"_smtp._tls.{domain}. TXT " + txt(f"v=TLSRPTv1; rua=mailto:tls@{domain}"),
        "bimi": f"default._bimi.{domain}. TXT " + txt(f"v=BIMI1; l=https://{domain}/logo.svg"),
    }
    parts.update(override)
    return "\n".join(v for k, v in parts.items() if k not in skip and v) + "\n"


def test_zone() -> str:
    spf_includes = " ".join(f"include:l{i}.spfparts.test" for i in range(11))
    long_spf = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(1, 40)) + " -all"
    cases = [
        good("good.test"),
        # --- mx
        good("nomx.test", skip=("mx",)) + "nomx.test. A 127.0.0.20\n",
        good("nomxnoaddr.test", skip=("mx",)),
        good("nullmx.test", mx="nullmx.test. MX 0 .", spf="nullmx.test. TXT " + txt("v=spf1 -all")),
        good("nullmixed.test") + "nullmixed.test. MX 0 .\n",
        good("unresolvable.test", mx="unresolvable.test. MX 10 nohost.mailhost.test."),
        good("mxcname.test", mx="mxcname.test. MX 10 alias.mailhost.test."),
        good("mxip.test", mx="mxip.test. MX 10 127.0.0.10."),
        good("noipv6.test", mx="noipv6.test. MX 10 mx4.mailhost.test."),
        good("noptr.test", mx="noptr.test. MX 10 mxnoptr.mailhost.test."),
        good("ptrwrong.test", mx="ptrwrong.test. MX 10 mxwrong.mailhost.test."),
        # --- spf
        good("nospf.test", skip=("spf",)),
        good("twospf.test") + "twospf.test. TXT " + txt("v=spf1 a -all") + "\n",
        good("spfsyntax.test", spf="spfsyntax.test. TXT " + txt("v=spf1 ip4:999.1.1.1 -all")),
        good("spflookups.test", spf="spflookups.test. TXT " + txt(f"v=spf1 {spf_includes} -all")),
        good(
            "spfvoid.test",
            spf="spfvoid.test. TXT "
            + txt("v=spf1 a:v1.spfparts.test a:v2.spfparts.test a:v3.spfparts.test -all"),
        ),
        good(
            "spfvoid2.test",
            spf="spfvoid2.test. TXT " + txt("v=spf1 a:v1.spfparts.test a:v2.spfparts.test mx -all"),
        ),
        good("plusall.test", spf="plusall.test. TXT " + txt("v=spf1 mx +all")),
        good("bareall.test", spf="bareall.test. TXT " + txt("v=spf1 mx all")),
        good("neutral.test", spf="neutral.test. TXT " + txt("v=spf1 mx ?all")),
        good("softfail.test", spf="softfail.test. TXT " + txt("v=spf1 mx ~all")),
        good("noall.test", spf="noall.test. TXT " + txt("v=spf1 mx")),
        good("redirect.test", spf="redirect.test. TXT " + txt("v=spf1 redirect=good.test")),
        good("spfptr.test", spf="spfptr.test. TXT " + txt("v=spf1 ptr mx -all")),
        good("spfloop.test", spf="spfloop.test. TXT " + txt("v=spf1 include:spfloop.test -all")),
        good(
            "spfinclmissing.test",
            spf="spfinclmissing.test. TXT " + txt("v=spf1 include:nospf.test -all"),
        ),
        good("spflong.test", spf="spflong.test. TXT " + txt(long_spf)),
        # --- dmarc
        good("nodmarc.test", skip=("dmarc",)),
        good("twodmarc.test") + "_dmarc.twodmarc.test. TXT " + txt("v=DMARC1; p=none") + "\n",
        good("dmarcsyntax.test", dmarc="_dmarc.dmarcsyntax.test. TXT " + txt("v=DMARC1; p=bogus")),
        good(
            "dmarcnone.test",
            dmarc="_dmarc.dmarcnone.test. TXT "
            + txt("v=DMARC1; p=none; rua=mailto:d@dmarcnone.test"),
        ),
        good(
            "pct.test",
            dmarc="_dmarc.pct.test. TXT "
            + txt("v=DMARC1; p=reject; pct=50; rua=mailto:d@pct.test"),
        ),
        good(
            "weaksp.test",
            dmarc="_dmarc.weaksp.test. TXT "
            + txt("v=DMARC1; p=reject; sp=none; rua=mailto:d@weaksp.test"),
        ),
        good(
            "weaknp.test",
            dmarc="_dmarc.weaknp.test. TXT "
            + txt("v=DMARC1; p=reject; np=quarantine; rua=mailto:d@weaknp.test"),
        ),
        good("norua.test", dmarc="_dmarc.norua.test. TXT " + txt("v=DMARC1; p=reject")),
        good(
            "extrua.test",
            dmarc="_dmarc.extrua.test. TXT " + txt("v=DMARC1; p=reject; rua=mailto:d@reports.test"),
        ),
        good(
            "authrua.test",
            dmarc="_dmarc.authrua.test. TXT "
            + txt("v=DMARC1; p=reject; rua=mailto:d@reports.test"),
        ),
        "authrua.test._report._dmarc.reports.test. TXT " + txt("v=DMARC1") + "\n",
        "reports.test. MX 10 mx.mailhost.test.\n",
        good("sub.good.test", skip=("dmarc",)),
        good("dmarccname.test", dmarc="_dmarc.dmarccname.test. CNAME _dmarc.good.test."),
        # --- dkim
        good("nodkim.test", skip=("dkim",)),
        good(
            "customsel.test",
            dkim="myselector._domainkey.customsel.test. TXT " + txt(f"v=DKIM1; p={rsa_key(2048)}"),
        ),
        good(
            "weakkey.test",
            dkim="s1._domainkey.weakkey.test. TXT " + txt(f"v=DKIM1; k=rsa; p={rsa_key(1024)}"),
        ),
        good(
            "tinykey.test",
            dkim="s1._domainkey.tinykey.test. TXT " + txt(f"v=DKIM1; k=rsa; p={rsa_key(512)}"),
        ),
        good(
            "dkimtesting.test",
            dkim="google._domainkey.dkimtesting.test. TXT "
            + txt(f"v=DKIM1; t=y; p={rsa_key(2048)}"),
        ),
        good(
            "revoked.test",
            dkim="selector1._domainkey.revoked.test. TXT " + txt("v=DKIM1; k=rsa; p="),
        ),
        good(
            "badkey.test",
            dkim="default._domainkey.badkey.test. TXT " + txt("v=DKIM1; k=rsa; p=bm90IGEga2V5"),
        ),
        good(
            "edkey.test",
            dkim="k1._domainkey.edkey.test. TXT " + txt(f"v=DKIM1; k=ed25519; p={ed25519_key()}"),
        ),
        good(
            "parked.test",
            skip=("dkim", "bimi"),
            spf="parked.test. TXT " + txt("v=spf1 -all"),
            dmarc="_dmarc.parked.test. TXT " + txt("v=DMARC1; p=reject; rua=mailto:d@parked.test"),
        ),
        good("wildtxt.test", skip=("dkim",)) + "*.wildtxt.test. TXT " + txt("v=spf1 -all") + "\n",
        # --- tls_rpt and bimi
        good("notlsrpt.test", skip=("tls_rpt",)),
        good(
            "badtlsrpt.test",
            tls_rpt="_smtp._tls.badtlsrpt.test. TXT " + txt("v=TLSRPTv1; rua=ftp://x.test"),
        ),
        good("nobimi.test", skip=("bimi",)),
        good(
            "badbimi.test",
            bimi="default._bimi.badbimi.test. TXT " + txt("v=BIMI1; l=http://badbimi.test/l.svg"),
        ),
        # --- policy verdicts (issue 11, item 8)
        *policy_cases(),
        # --- typical domains whose scores are ordered (issue 11, item 9)
        *typical_cases(),
        # --- the whole SPF tree (issue 11, item 3)
        *spf_tree_cases(),
        # --- IDN
        good("xn--bcher-kva.test"),
        # --- timeouts: the tests' forwarder never answers names under slow.test
        good("slow.test"),
        # --- delegation to a zone that does not load (SERVFAIL)
        "broken.test. NS ns.test.\n",
    ]
    spf_parts = "".join(
        f"l{i}.spfparts.test. TXT " + txt(f"v=spf1 ip4:192.0.2.{i} -all") + "\n" for i in range(11)
    )
    return SOA + "ns A 127.0.0.1\n" + "".join(cases) + spf_parts


def dmarc(domain: str, tags: str) -> str:
    return f"_dmarc.{domain}. TXT " + txt(f"v=DMARC1; {tags}; rua=mailto:d@{domain}")


def policy_cases() -> list[str]:
    """DMARC pct, BIMI under each DMARC policy, DKIM hash restrictions, null MX with senders."""
    key = rsa_key(2048)
    return [
        good("pctabc.test", dmarc=dmarc("pctabc.test", "p=reject; pct=abc")),
        good("pct150.test", dmarc=dmarc("pct150.test", "p=reject; pct=150")),
        good("pctnone.test", dmarc=dmarc("pctnone.test", "p=none; pct=20")),
        good("pctquarantine.test", dmarc=dmarc("pctquarantine.test", "p=quarantine; pct=50")),
        good("pct100.test", dmarc=dmarc("pct100.test", "p=reject; pct=100")),
        # BIMI records (from good()) beside DMARC policies that do and do not enforce
        good("bimiquarantine.test", dmarc=dmarc("bimiquarantine.test", "p=quarantine")),
        good("bimipct.test", dmarc=dmarc("bimipct.test", "p=quarantine; pct=99")),
        good("biminodmarc.test", skip=("dmarc",)),
        good(
            "dkimsha1.test",
            dkim="s1._domainkey.dkimsha1.test. TXT " + txt(f"v=DKIM1; k=rsa; h=sha1; p={key}"),
        ),
        good(
            "dkimsha256.test",
            dkim="s1._domainkey.dkimsha256.test. TXT "
            + txt(f"v=DKIM1; k=rsa; h=sha1:sha256; p={key}"),
        ),
        # Receives no mail (null MX), but its SPF authorises a sender: it sends mail.
        good(
            "nullmxsender.test",
            skip=("dkim",),
            mx="nullmxsender.test. MX 0 .",
            spf="nullmxsender.test. TXT " + txt("v=spf1 ip4:192.0.2.25 -all"),
        ),
    ]


def typical_cases() -> list[str]:
    """Domains as admins set them up, from locked down to wide open."""
    return [
        # A parked domain: sends and receives nothing, says so everywhere.
        good(
            "parkednull.test",
            skip=("dkim", "bimi", "tls_rpt"),
            mx="parkednull.test. MX 0 .",
            spf="parkednull.test. TXT " + txt("v=spf1 -all"),
        ),
        # The usual hosted setup on the way to reject: ~all and quarantine.
        good(
            "quarantine.test",
            spf="quarantine.test. TXT " + txt("v=spf1 mx include:l1.spfparts.test ~all"),
            dmarc=dmarc("quarantine.test", "p=quarantine"),
        ),
        # Signs with DKIM and rejects, but publishes no SPF.
        good("nospfreject.test", skip=("spf", "bimi")),
        # SPF and DKIM, DMARC only monitoring, or none at all.
        good("monitoring.test", skip=("bimi",), dmarc=dmarc("monitoring.test", "p=none")),
        good("nodmarconly.test", skip=("dmarc", "bimi")),
        # Nothing says who may send.
        good("wideopen.test", skip=("spf", "dmarc", "bimi")),
        # ?all without DMARC enforcement protects nothing either.
        good(
            "neutralnone.test",
            skip=("bimi",),
            spf="neutralnone.test. TXT " + txt("v=spf1 mx ?all"),
            dmarc=dmarc("neutralnone.test", "p=none"),
        ),
        # +all passes forgeries through SPF, and so through DMARC p=reject.
        good(
            "plusallreject.test",
            skip=("bimi",),
            spf="plusallreject.test. TXT " + txt("v=spf1 +all"),
        ),
        # The same mail server without IPv6: run by a provider, or by the domain itself.
        good("providernov6.test", mx="providernov6.test. MX 10 mx4.mailhost.test."),
        good("ownnov6.test", mx="ownnov6.test. MX 10 mx.ownnov6.test.")
        + "mx.ownnov6.test. A 127.0.0.11\n",
    ]


def spf(domain: str, record: str) -> str:
    return f"{domain}. TXT " + txt(record)


def spf_tree_cases() -> list[str]:
    """Domains whose own SPF record looks fine, and the tree below it does not."""
    parts = "spftree.test"  # the records they include or redirect to
    cases = {
        "inclpassall": "v=spf1 mx include:passall.spftree.test -all",
        "redirpassall": "v=spf1 redirect=passall.spftree.test",
        "inclwide": "v=spf1 mx include:wide.spftree.test -all",
        "existsall": "v=spf1 exists:mx.mailhost.test -all",
        "ip4all": "v=spf1 mx ip4:0.0.0.0/0 -all",
        "redirneutral": "v=spf1 redirect=neutral.spftree.test",
        "redirnoall": "v=spf1 redirect=noall.spftree.test",
        "inclneutral": "v=spf1 mx include:neutral.spftree.test include:fail.spftree.test -all",
        "redirloop": "v=spf1 mx redirect=loop.spftree.test",
        "inclloop": "v=spf1 mx include:inclloop.spftree.test -all",
        "incltwo": "v=spf1 mx include:two.spftree.test -all",
        "inclnxdomain": "v=spf1 mx include:nothere.spftree.test -all",
        "redirmissing": "v=spf1 redirect=nospf.test",
        "inclsyntax": "v=spf1 mx include:syntax.spftree.test -all",
        "deepptr": "v=spf1 mx include:ptr1.spftree.test -all",
        "nestedlookups": "v=spf1 include:n1.spftree.test include:n2.spftree.test -all",
        "nestedvoid": "v=spf1 mx include:void.spftree.test a:v3.spfparts.test -all",
        "manymx": "v=spf1 mx:manymx.spftree.test -all",
        "inclbroken": "v=spf1 mx include:broken.test -all",
        "inclcase": "V=SPF1 MX INCLUDE:fail.spftree.test -ALL",
        # permerrors checkdmarc lets through: a word after all, a % that starts no macro
        "wordafterall": "v=spf1 mx -all moo",
        "badmacro": "v=spf1 mx -all foo=%abc",
        # three IPv4-only hosts: void lookups for IPv6 senders only
        "v6void": "v=spf1 a:mx4.mailhost.test a:mxnoptr.mailhost.test a:mxwrong.mailhost.test -all",
    }
    includes = " ".join(f"include:l{i}.spfparts.test" for i in range(5))
    targets = {
        "passall": "v=spf1 +all",
        "wide": "v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all",
        "neutral": "v=spf1 ip4:192.0.2.1 ?all",
        "noall": "v=spf1 ip4:192.0.2.1",
        "fail": "v=spf1 ip4:192.0.2.2 -all",
        "loop": "v=spf1 redirect=loop2.spftree.test",
        "loop2": "v=spf1 ip4:192.0.2.3 redirect=redirloop.test",
        "inclloop": "v=spf1 include:inclloop.test -all",
        "syntax": "v=spf1 ip4:192.0.2.300 -all",
        "ptr1": "v=spf1 include:ptr2.spftree.test -all",
        "ptr2": "v=spf1 ip4:192.0.2.4 ptr:mailhost.test -all",
        "n1": f"v=spf1 {includes} -all",  # 1 + 5 lookups
        "n2": "v=spf1 include:l5.spfparts.test include:l6.spfparts.test a mx -all",  # 1 + 4
        "n2.spftree.test. A": "127.0.0.10",
        "n2.spftree.test. MX": "10 mx.mailhost.test.",
        "void": "v=spf1 a:v1.spfparts.test a:v2.spfparts.test -all",
    }
    zone = [good(f"{name}.test", spf=spf(f"{name}.test", r)) for name, r in cases.items()]
    for name, value in targets.items():
        if " " in name:
            zone.append(f"{name} {value}\n")
        else:
            zone.append(spf(f"{name}.{parts}", value) + "\n")
    zone.append(spf(f"two.{parts}", "v=spf1 ip4:192.0.2.5 -all") + "\n")
    zone.append(spf(f"two.{parts}", "v=spf1 ip4:192.0.2.6 -all") + "\n")
    zone += [f"manymx.{parts}. MX {10 + i} mx.mailhost.test.\n" for i in range(11)]
    return zone


MAILHOST = (
    SOA
    + """
mx A 127.0.0.10
mx AAAA ::1
mx4 A 127.0.0.11
mxnoptr A 127.0.0.12
mxwrong A 127.0.0.13
elsewhere A 127.0.0.99
alias CNAME mx
"""
)

REVERSE_V4 = """@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
10.0.0 PTR mx.mailhost.test.
11.0.0 PTR mx4.mailhost.test.
13.0.0 PTR elsewhere.mailhost.test.
"""

REVERSE_V6 = """@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mx.mailhost.test.
"""


def zones() -> dict[str, str]:
    return {
        "test": test_zone(),
        "mailhost.test": MAILHOST,
        "127.in-addr.arpa": REVERSE_V4,
        "ip6.arpa": REVERSE_V6,
        "broken.test": SOA + "www A 127.0.0.1\n" + good("broken.test"),
    }
