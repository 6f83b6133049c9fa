"""mailsec's SPF grammar, without any network: RFC 7208's own text and examples, and the cases
of the well-known SPF test suite (written here from our reading of the RFC), each a record that
every client must treat as a permerror or one that must be accepted."""

import ipaddress

import pytest

from domains.checks.spf_syntax import is_spf_record, parse
from domains.checks.spf_tree import expand

# Records RFC 7208 accepts (the section that says so).
VALID = [
    # 4.5, 12: the version alone is a record; the version tag and names are case-insensitive
    ("v=spf1", "4.5"),
    ("V=SPF1 -ALL", "12: ABNF strings are case-insensitive"),
    ("v=spf1 +mX -aLl", "12"),
    ("v=spf1  mx   -all  ", "12: terms = *( 1*SP ...), record ends in *SP"),
    # 5.1 .. 5.7: every mechanism in its forms
    ("v=spf1 all", "5.1"),
    ("v=spf1 include:_spf.example.com -all", "5.2: underscores are fine"),
    ("v=spf1 a a:example.com a/24 a//64 a/24//64 a:example.com/24//64 -all", "5.3"),
    ("v=spf1 mx mx:example.com mx/30 mx//126 mx:example.com/24//64 -all", "5.4"),
    ("v=spf1 ptr ptr:example.com -all", "5.5"),
    ("v=spf1 ip4:192.0.2.1 ip4:192.0.2.0/24 ip4:0.0.0.0/0 ip4:192.0.2.1/32 -all", "5.6"),
    ("v=spf1 ip4:192.0.2.1/24 -all", "5.6: host bits may be set"),
    ("v=spf1 ip6:2001:db8::1 ip6:2001:db8::/32 ip6:::/0 ip6:::1/128 -all", "5.6"),
    ("v=spf1 ip6:::ffff:192.0.2.1 -all", "5.6: RFC 4291 2.2 mixed notation"),
    ("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "5.7 and 7.4's example"),
    # 6: modifiers, unknown ones ignored, each known one once
    ("v=spf1 redirect=_spf.example.com", "6.1"),
    ("v=spf1 mx -all exp=explain._spf.%{d}", "6.2"),
    ("v=spf1 mx -all moo.cow-far_out=man:dog/cat", "6: name = ALPHA *(ALPHA/DIGIT/-/_/.)"),
    ("v=spf1 foo= -all", "6: an unknown modifier may be empty"),
    ("v=spf1 default=+ -all", "6: RFC 4408's default= is just an unknown modifier"),
    ("v=spf1 mx -all foo=%{c}%{r}%{t}", "an unknown modifier is a macro-string"),
    ("v=spf1 REDIRECT=example.com", "modifier names are case-insensitive"),
    # 5.1: terms after all are never evaluated but allowed
    ("v=spf1 -all mx include:example.com", "5.1"),
    ("v=spf1 redirect=example.com -all", "6.1: redirect ignored with all, not an error"),
    # domain-spec: any visible ASCII, ending in a toplabel or a macro
    ("v=spf1 a:foo:bar/baz.example.com -all", "7.1: macro-literal is any visible char"),
    ("v=spf1 a:example.com. -all", "7.1: domain-end may end in a dot"),
    ("v=spf1 a:mail.example.com-a -all", "toplabel may contain dashes"),
    ("v=spf1 a:mail.xn--p1ai -all", "toplabel of an IDN"),
    ("v=spf1 a:mail.example.123a -all", "toplabel needs one letter"),
    ("v=spf1 include:%{d} -all", "domain-end = macro-expand"),
    ("v=spf1 exists:%{i}.%{s}.%{l}.%{o}.%{d}.%{h}.%{v}.%{p}.rbl.example.com -all", "7.2"),
    ("v=spf1 exists:%{S}.%{IR}.example.com -all", "7.3: upper-case macros URL-escape"),
    ("v=spf1 exists:%{d2}.%{l-}.%{ir=_}.example.com -all", "7.1: transformers, delimiters"),
    ("v=spf1 a:a.%{h}.%{d}%%%-%_.example.com -all", "7.1: %%, %-, %_"),
    ("v=spf1 exists:%{l}%- -all", "domain-end = macro-expand includes %-"),
    ("v=spf1 exists:%{d200}.example.com -all", "more parts than there are is fine (7.3)"),
]

# Records that are a permerror for every client: (record, the offending term, why).
INVALID = [
    ("v=spf1 ip4:1.1.1.1/0 -all moo", "moo", "4.6: errors anywhere, even after all"),
    ("v=spf1 moo.cow/far_out=man:dog/cat -all", "moo.cow/far_out=man:dog/cat", "6: name"),
    ("v=spf1 moo.cow:far_out=man:dog/cat -all", "moo.cow:far_out=man:dog/cat", "6: name"),
    ("v=spf1 1up=foo -all", "1up=foo", "6: a name starts with ALPHA"),
    ("v=spf1 =foo -all", "=foo", "6: empty name"),
    ("v=spf1 ip4:1.2.3.4 redirect:example.com", "redirect:example.com", "redirect is no mech"),
    ("v=spf1 +redirect=example.com", "+redirect=example.com", "modifiers take no qualifier"),
    ("v=spf1 redirect=a.example.com redirect=b.example.com", "redirect=b.example.com", "6"),
    ("v=spf1 -all exp=a.example.com exp=b.example.com", "exp=b.example.com", "6"),
    ("v=spf1 -all Exp=a.example.com exp=b.example.com", "exp=b.example.com", "6, any case"),
    ("v=spf1 redirect=", "redirect=", "6.1: domain-spec is not empty"),
    ("v=spf1 exp= -all", "exp=", "6.2: domain-spec is not empty"),
    ("v=spf1 -all foo=%abc", "foo=%abc", "7.1: % starts a macro"),
    # 5: unknown mechanisms, and mechanisms without their argument or with a wrong one
    ("v=spf1 mx -al", "-al", "5: unknown mechanism"),
    ("v=spf1 ipv4:192.0.2.1 -all", "ipv4:192.0.2.1", "5: unknown mechanism"),
    ("v=spf1 all:example.com", "all:example.com", "5.1: all takes nothing"),
    ("v=spf1 +-all", "+-all", "one qualifier"),
    ("v=spf1 include -all", "include", "5.2: needs a domain"),
    ("v=spf1 include: -all", "include:", "5.2: empty domain"),
    ("v=spf1 include:example.com/24 -all", "include:example.com/24", "5.2: no CIDR"),
    ("v=spf1 exists -all", "exists", "5.7: needs a domain"),
    ("v=spf1 exists: -all", "exists:", "5.7"),
    ("v=spf1 exists:mail.example.com/24 -all", "exists:mail.example.com/24", "5.7: no CIDR"),
    ("v=spf1 a: -all", "a:", "5.3: empty domain"),
    ("v=spf1 a/33 -all", "a/33", "5.3: ip4-cidr-length 0-32"),
    ("v=spf1 a//129 -all", "a//129", "5.3: ip6-cidr-length 0-128"),
    ("v=spf1 a/24/64 -all", "a/24/64", "dual-cidr-length is /n//n"),
    ("v=spf1 a/024 -all", "a/024", "12: no leading zero"),
    ("v=spf1 mx: -all", "mx:", "5.4"),
    ("v=spf1 mx/33 -all", "mx/33", "5.4"),
    ("v=spf1 mx.example.com -all", "mx.example.com", "5.4: mx needs a colon"),
    ("v=spf1 ptr/0 -all", "ptr/0", "5.5: no CIDR"),
    ("v=spf1 ptr: -all", "ptr:", "5.5: empty domain"),
    ("v=spf1 ip4 -all", "ip4", "5.6: needs an address"),
    ("v=spf1 ip4:1.2.3.4:8080 -all", "ip4:1.2.3.4:8080", "5.6"),
    ("v=spf1 ip4:1.2.3 -all", "ip4:1.2.3", "5.6: dotted quad"),
    ("v=spf1 ip4:999.1.1.1 -all", "ip4:999.1.1.1", "5.6: qnum 0-255"),
    ("v=spf1 ip4:01.2.3.4 -all", "ip4:01.2.3.4", "12: qnum has no leading zero"),
    ("v=spf1 ip4:1.2.3.4/33 -all", "ip4:1.2.3.4/33", "5.6"),
    ("v=spf1 ip4:1.2.3.4/032 -all", "ip4:1.2.3.4/032", "12: no leading zero"),
    ("v=spf1 ip4:1.2.3.4/ -all", "ip4:1.2.3.4/", "12: a length after the slash"),
    ("v=spf1 ip4:1.2.3.4//32 -all", "ip4:1.2.3.4//32", "ip4 takes no dual CIDR"),
    ("v=spf1 ip4:2001:db8::1 -all", "ip4:2001:db8::1", "5.6"),
    ("v=spf1 ip6:1.2.3.4 -all", "ip6:1.2.3.4", "5.6"),
    ("v=spf1 ip6:::1/129 -all", "ip6:::1/129", "5.6"),
    ("v=spf1 ip6:::1/1/0 -all", "ip6:::1/1/0", "5.6"),
    ("v=spf1 ip6:fe80::1%eth0 -all", "ip6:fe80::1%eth0", "no zone index in RFC 4291 2.2"),
    ("v=spf1 ip6 -all", "ip6", "5.6"),
    # 7.1 domain-end: a literal name ends in "." toplabel, which is not all digits
    ("v=spf1 a:foo-bar -all", "a:foo-bar", "one label has no domain-end"),
    ("v=spf1 a:museum -all", "a:museum", "toplabel needs a dot before it"),
    ("v=spf1 a:museum. -all", "a:museum.", "toplabel needs a dot before it"),
    ("v=spf1 a:111.222.33.44 -all", "a:111.222.33.44", "an all-numeric toplabel"),
    ("v=spf1 mx:abc.123 -all", "mx:abc.123", "an all-numeric toplabel"),
    ("v=spf1 mx:example.-com -all", "mx:example.-com", "toplabel starts alphanum"),
    ("v=spf1 mx:example.com- -all", "mx:example.com-", "toplabel ends alphanum"),
    ("v=spf1 a:example.com.. -all", "a:example.com..", "one trailing dot at most"),
    ("v=spf1 include:%{d}. -all", "include:%{d}.", "a dot after a macro is no domain-end"),
    ("v=spf1 a:foo..example.com -all", "a:foo..example.com", "4.3: empty label"),
    ("v=spf1 a:.example.com -all", "a:.example.com", "4.3: empty label"),
    ("v=spf1 include:%{d}..example.com -all", "include:%{d}..example.com", "4.3: empty label"),
    ("v=spf1 a:" + "x" * 64 + ".example.com -all", "a:" + "x" * 64 + ".example.com", "4.3"),
    # 7.1 .. 7.3: macros
    ("v=spf1 exists:%{q}.example.com -all", "exists:%{q}.example.com", "7.1: no letter q"),
    ("v=spf1 exists:%{l}%x.example.com -all", "exists:%{l}%x.example.com", "7.1: %x"),
    ("v=spf1 exists:%{l}.%{d}% -all", "exists:%{l}.%{d}%", "7.1: a trailing %"),
    ("v=spf1 exists:%{l.example.com -all", "exists:%{l.example.com", "7.1: unclosed"),
    ("v=spf1 exists:%{}.example.com -all", "exists:%{}.example.com", "7.1: no letter"),
    ("v=spf1 exists:%{c}.example.com -all", "exists:%{c}.example.com", "7.2: c only in exp"),
    ("v=spf1 exists:%{r}.example.com -all", "exists:%{r}.example.com", "7.2: r only in exp"),
    ("v=spf1 exists:%{t}.example.com -all", "exists:%{t}.example.com", "7.2: t only in exp"),
    ("v=spf1 -all exp=%{r}.example.com", "exp=%{r}.example.com", "7.2: exp= is a domain"),
    ("v=spf1 exists:%{d0}.example.com -all", "exists:%{d0}.example.com", "7.3: nonzero"),
    ("v=spf1 exists:%{dr2}.example.com -all", "exists:%{dr2}.example.com", "7.1: digits first"),
    ("v=spf1 exists:%{d:}.example.com -all", "exists:%{d:}.example.com", "7.1: delimiters"),
    # 12: SP is the only separator; visible ASCII only
    ("v=spf1 mx\t-all", "mx\t-all", "12: a tab is no SP"),
    ("v=spf1 a:exämple.com -all", "a:exämple.com", "12: ASCII only (use the A-label)"),
]


@pytest.mark.parametrize(("record", "why"), VALID)
def test_rfc7208_accepts(record, why):
    assert is_spf_record(record)
    assert parse(record).errors == []


@pytest.mark.parametrize(("record", "term", "why"), INVALID)
def test_rfc7208_permerror_quotes_the_term(record, term, why):
    errors = parse(record).errors
    assert [e.term for e in errors] == [term]
    assert str(errors[0]).startswith(f'"{term}": ')


@pytest.mark.parametrize(
    ("text", "is_record"),
    [
        ("v=spf1", True),
        ("v=spf1 -all", True),
        ("V=Spf1 -all", True),
        ("v=spf1-all", False),  # 4.5: the version is followed by a space or the end
        ("v=spf10 -all", False),
        ("v=spf1\t-all", False),
        (" v=spf1 -all", False),
        ("spf2.0/pra -all", False),
    ],
)
def test_record_selection(text, is_record):
    assert is_spf_record(text) is is_record


def test_every_error_of_a_record_is_reported():
    errors = parse("v=spf1 ip4:999.1.1.1 foo a:bar -all").errors
    assert [e.term for e in errors] == ["ip4:999.1.1.1", "foo", "a:bar"]


def test_terms_are_parsed():
    record = parse("v=spf1 ?ip4:192.0.2.1/24 -a:example.com/24//64 ~mx include:x.example -ALL")
    ip4, a, mx, include, all_ = record.terms
    assert (ip4.result, ip4.network) == ("neutral", ipaddress.ip_network("192.0.2.0/24"))
    assert (a.result, a.domain_spec, a.cidr4, a.cidr6) == ("fail", "example.com", 24, 64)
    assert (mx.result, mx.domain_spec, mx.cidr4) == ("softfail", None, None)
    assert (include.name, include.looks_up, all_.name, all_.result) == (
        "include", True, "all", "fail"
    )  # fmt: skip
    assert record.all is all_


def test_redirect_is_ignored_when_the_record_has_all():
    assert parse("v=spf1 redirect=example.com -all").redirect is None  # RFC 7208 6.1
    assert parse("v=spf1 redirect=example.com").redirect.domain_spec == "example.com"


def test_an_unknown_modifier_named_like_a_mechanism_costs_no_lookup():
    (term,) = parse("v=spf1 include=example.com").terms
    assert (term.modifier, term.looks_up) == (True, False)


@pytest.mark.parametrize(
    ("spec", "expanded"),
    [
        # RFC 7208 7.4's examples, with <domain> = email.example.com
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("_spf.%{d}.", "_spf.email.example.com"),
        ("%{d-}", "email.example.com"),
        ("%{i}.example.com", None),  # the sender's address: unknown here
        ("%{l}.%{d}", None),
        ("%{d}%{d1}", "email.example.comcom"),
        ("x%{d}", "xemail.example.com"),
        ("%{d1}%%.example.com", "com%.example.com"),
    ],
)
def test_macro_expansion_of_the_domain(spec, expanded):
    assert expand(spec, "email.example.com") == expanded


def test_an_overlong_expansion_loses_labels_from_the_left():
    long = ".".join(["x" * 60] * 5)  # 304 characters
    expanded = expand("%{d}", long + ".example.com")
    assert len(expanded) <= 253
    assert expanded.endswith(".example.com")
