"""mailsec's own strict reading of an SPF record (RFC 7208 section 12's ABNF, with the rules of
sections 4.5, 4.6, 5, 6 and 7). Pure: a string in, the terms and every syntax error out.

A record with any error here is a permerror for every client (RFC 7208 4.6: syntax errors
anywhere in the record must be detected, whether or not evaluation would reach them). Whatever
the ABNF accepts is accepted: the version tag and the term names are case-insensitive (ABNF
strings are, RFC 5234 2.3), a domain-spec may hold any visible ASCII character (`_spf`,
`foo:bar/baz.example.com`), unknown modifiers are ignored, and valid terms may follow `all`.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext_noop

from domains.messages import Message, msg

VERSION = "v=spf1"
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# The terms that cost a DNS lookup and count against the limit of 10 (RFC 7208 4.6.4).
LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9\-_.]*)=(.*)", re.S)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z0-9]+)(.*)", re.S)
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4 = re.compile(rf"{_QNUM}(?:\.{_QNUM}){{3}}")
_IP4_CIDR = re.compile(r"/(0|[1-9][0-9]?)")
_IP6_CIDR = re.compile(r"/(0|[1-9][0-9]{0,2})")
# domain-spec then dual-cidr-length: `/n` for IPv4 and/or `//n` for IPv6, each optional.
_DUAL_CIDR_TAIL = re.compile(r"(.*?)((?:/[0-9]+)?(?://[0-9]+)?)", re.S)
_DUAL_CIDR = re.compile(r"(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?")
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9]")
MACRO = re.compile(r"([slodiphvcrt])([0-9]*)(r?)([.\-+,/_=]*)", re.I)
EXP_ONLY_LETTERS = set("crt")  # RFC 7208 7.2: only in the explanation text


def is_spf_record(text: str) -> bool:
    """RFC 7208 4.5: the version, case-insensitive, then a space or the end."""
    return text[:6].lower() == VERSION and (len(text) == 6 or text[6] == " ")


@dataclass(frozen=True)
class Term:
    text: str  # as written
    name: str  # lower case: a mechanism, "redirect", "exp" or an unknown modifier's name
    modifier: bool = False
    qualifier: str = "+"
    domain_spec: str | None = None  # the target as written (a, mx, ptr may have none)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4 and ip6
    cidr4: int | None = None  # dual-cidr-length of a and mx
    cidr6: int | None = None

    @property
    def result(self) -> str:
        """What a match of this mechanism returns: pass, fail, softfail or neutral."""
        return QUALIFIERS[self.qualifier]

    @property
    def looks_up(self) -> bool:
        return self.name in LOOKUP_TERMS and (self.modifier == (self.name == "redirect"))

    @property
    def has_macro(self) -> bool:
        return "%" in (self.domain_spec or "")


@dataclass(frozen=True)
class Problem:
    term: str  # the offending term, quoted in the finding
    reason: str  # in English
    message: Message | None = field(default=None, compare=False)  # the reason, to translate

    def __str__(self) -> str:
        return f'"{self.term}": {self.reason}'

    def translatable(self) -> Message:
        reason = self.message or self.reason
        return msg(gettext_noop('"%(term)s": %(reason)s'), term=self.term, reason=reason)


@dataclass
class Record:
    text: str
    terms: list[Term] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    @property
    def mechanisms(self) -> list[Term]:
        return [t for t in self.terms if not t.modifier]

    def modifier(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.modifier and t.name == name), None)

    @property
    def all(self) -> Term | None:
        return next((t for t in self.mechanisms if t.name == "all"), None)

    @property
    def redirect(self) -> Term | None:
        """The redirect that counts: RFC 7208 6.1 ignores it when the record has `all`."""
        return None if self.all else self.modifier("redirect")

    @property
    def evaluated(self) -> list[Term]:
        """The mechanisms a client that matches none of them goes through: up to `all`."""
        found = []
        for term in self.mechanisms:
            found.append(term)
            if term.name == "all":
                break
        return found


def parse(text: str) -> Record:
    """Every term of a record that `is_spf_record`, and every reason it is a permerror."""
    record = Record(text)
    if not is_spf_record(text):
        reason = msg(gettext_noop('does not start with "v=spf1 "'))
        record.errors.append(Problem(text[:20], reason.english(), reason))
        return record
    for word in text[6:].split(" "):
        if not word:  # terms = *( 1*SP ...) and a record may end in spaces
            continue
        try:
            record.terms.append(parse_term(word))
        except TermError as exc:
            record.errors.append(Problem(word, str(exc), exc.message))
    for name in ("redirect", "exp"):
        extra = [t for t in record.terms if t.modifier and t.name == name][1:]
        for term in extra:  # RFC 7208 6: at most once each
            reason = msg(gettext_noop("a second %(name)s= modifier (RFC 7208 6)"), name=name)
            record.errors.append(Problem(term.text, reason.english(), reason))
    return record


class TermError(ValueError):
    """Why a term is invalid: str() in English, `message` to translate."""

    def __init__(self, text: str, **args):
        self.message = msg(text, **args)
        super().__init__(self.message.english())


def parse_term(word: str) -> Term:
    bad = [c for c in word if not 0x21 <= ord(c) <= 0x7E]
    if bad:
        raise TermError(
            gettext_noop("character %(char)s is not allowed (visible ASCII only, RFC 7208 12)"),
            char=repr(bad[0]),
        )
    modifier = _MODIFIER.fullmatch(word)
    if modifier:
        return _modifier(word, modifier.group(1).lower(), modifier.group(2))
    if word[0] in QUALIFIERS and _MODIFIER.fullmatch(word[1:]):
        raise TermError(gettext_noop("a modifier takes no qualifier"))
    mechanism = _MECHANISM.fullmatch(word)
    if not mechanism:
        raise TermError(gettext_noop("not a mechanism or modifier (RFC 7208 4.6.1)"))
    qualifier, name, rest = mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism[3]
    if name not in MECHANISMS:
        raise TermError(
            gettext_noop('unknown mechanism "%(name)s" (RFC 7208 5)'), name=mechanism.group(2)
        )
    return _MECHANISM_PARSERS[name](word, qualifier, name, rest)


def _modifier(word: str, name: str, value: str) -> Term:
    if name in ("redirect", "exp"):
        check_domain_spec(value)
        return Term(word, name, modifier=True, domain_spec=value)
    macro_parts(value, exp_letters=True)
    return Term(word, name, modifier=True, domain_spec=value)


def _all(word, qualifier, name, rest) -> Term:
    if rest:
        raise TermError(gettext_noop('"all" takes no argument'))
    return Term(word, name, qualifier=qualifier)


def _needs_domain(word, qualifier, name, rest) -> Term:
    """include:domain-spec and exists:domain-spec (no CIDR length)."""
    if not rest.startswith(":"):
        raise TermError(gettext_noop('"%(name)s" needs ":" and a domain'), name=name)
    check_domain_spec(rest[1:])
    return Term(word, name, qualifier=qualifier, domain_spec=rest[1:])


def _ptr(word, qualifier, name, rest) -> Term:
    if not rest:
        return Term(word, name, qualifier=qualifier)
    if not rest.startswith(":"):
        raise TermError(gettext_noop('"ptr" takes only ":" and a domain'))
    check_domain_spec(rest[1:])
    return Term(word, name, qualifier=qualifier, domain_spec=rest[1:])


def _a_or_mx(word, qualifier, name, rest) -> Term:
    spec = None
    if rest.startswith(":"):
        spec, cidr = _DUAL_CIDR_TAIL.fullmatch(rest[1:]).groups()
        check_domain_spec(spec)
    elif rest.startswith("/") or not rest:
        cidr = rest
    else:
        raise TermError(
            gettext_noop('"%(name)s" may be followed only by ":domain" or a CIDR length'), name=name
        )
    lengths = _DUAL_CIDR.fullmatch(cidr)
    if not lengths:
        raise TermError(
            gettext_noop('invalid CIDR length "%(cidr)s" (0-32 for IPv4, //0-128 for IPv6)'),
            cidr=cidr,
        )
    four, six = (int(n) if n is not None else None for n in lengths.groups())
    if (four is not None and four > 32) or (six is not None and six > 128):
        raise TermError(
            gettext_noop('invalid CIDR length "%(cidr)s" (0-32 for IPv4, //0-128 for IPv6)'),
            cidr=cidr,
        )
    return Term(word, name, qualifier=qualifier, domain_spec=spec, cidr4=four, cidr6=six)


def _ip4(word, qualifier, name, rest) -> Term:
    address, slash, length = rest[1:].partition("/")
    if not rest.startswith(":") or not _IP4.fullmatch(address):
        raise TermError(gettext_noop("needs a dotted-quad IPv4 address, e.g. ip4:192.0.2.0/24"))
    if slash and not (_IP4_CIDR.fullmatch("/" + length) and int(length) <= 32):
        raise TermError(
            gettext_noop('invalid IPv4 CIDR length "/%(length)s" (0-32, no leading zero)'),
            length=length,
        )
    network = ipaddress.IPv4Network(f"{address}/{length or 32}", strict=False)
    return Term(word, name, qualifier=qualifier, network=network)


def _ip6(word, qualifier, name, rest) -> Term:
    address, slash, length = rest[1:].partition("/")
    try:
        if not rest.startswith(":") or "%" in address:
            raise ValueError
        ipaddress.IPv6Address(address)
    except ValueError:
        raise TermError(gettext_noop("needs an IPv6 address, e.g. ip6:2001:db8::/32")) from None
    if slash and not (_IP6_CIDR.fullmatch("/" + length) and int(length) <= 128):
        raise TermError(
            gettext_noop('invalid IPv6 CIDR length "/%(length)s" (0-128, no leading zero)'),
            length=length,
        )
    network = ipaddress.IPv6Network(f"{address}/{length or 128}", strict=False)
    return Term(word, name, qualifier=qualifier, network=network)


_MECHANISM_PARSERS = {
    "all": _all,
    "include": _needs_domain,
    "exists": _needs_domain,
    "a": _a_or_mx,
    "mx": _a_or_mx,
    "ptr": _ptr,
    "ip4": _ip4,
    "ip6": _ip6,
}


def macro_parts(text: str, *, exp_letters: bool = False) -> list[str]:
    """The macro-string cut into literals and macro-expands (RFC 7208 7.1); TermError when a
    `%` starts no valid macro."""
    parts, literal, i = [], "", 0
    while i < len(text):
        char = text[i]
        if char != "%":
            literal += char
            i += 1
            continue
        if literal:
            parts.append(literal)
            literal = ""
        following = text[i + 1 : i + 2]
        if following in ("%", "_", "-"):
            parts.append(text[i : i + 2])
            i += 2
            continue
        end = text.find("}", i) if following == "{" else -1
        if end < 0:
            raise TermError(
                gettext_noop('"%%" must start %%{...}, %%%%, %%_ or %%- (RFC 7208 7.1)')
            )
        _check_macro(text[i + 2 : end], exp_letters)
        parts.append(text[i : end + 1])
        i = end + 1
    if literal:
        parts.append(literal)
    return parts


def _check_macro(body: str, exp_letters: bool) -> None:
    macro = MACRO.fullmatch(body)
    if not macro:
        raise TermError(gettext_noop('invalid macro "%%{%(body)s}" (RFC 7208 7.1)'), body=body)
    if macro.group(1).lower() in EXP_ONLY_LETTERS and not exp_letters:
        raise TermError(
            gettext_noop('macro "%%{%(body)s}" is allowed only in explanation text (RFC 7208 7.2)'),
            body=body,
        )
    if macro.group(2) and int(macro.group(2)) == 0:
        raise TermError(
            gettext_noop('macro "%%{%(body)s}": the number of parts must not be zero (7.3)'),
            body=body,
        )


def check_domain_spec(spec: str) -> None:
    """domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.

    A literal name must also be one DNS can ask about (labels of 1 to 63 octets, at most 253
    in all): RFC 7208 leaves either a permerror or no match to the client, and no client
    matches it."""
    if not spec:
        raise TermError(gettext_noop("the domain is empty"))
    parts = macro_parts(spec)
    last = parts[-1]
    if last.startswith("%"):
        return
    tail = last[:-1] if last.endswith(".") else last
    _, dot, toplabel = tail.rpartition(".")
    if not dot or not _TOPLABEL.fullmatch(toplabel):
        raise TermError(
            gettext_noop(
                '"%(spec)s" does not end in a valid top label such as ".com" (RFC 7208 7.1, '
                "domain-end)"
            ),
            spec=spec,
        )
    empty_label = spec.startswith(".") or any(".." in part for part in parts)
    labels = spec.rstrip(".").split(".")
    too_long = len(parts) == 1 and (any(len(label) > 63 for label in labels) or len(spec) > 253)
    if empty_label or too_long:
        raise TermError(
            gettext_noop('"%(spec)s" is not a valid domain name (empty or over-long label)'),
            spec=spec,
        )
