"""The whole SPF tree of a domain, walked the way a receiver evaluates it for a sender the
domain lists nowhere (RFC 7208 4.6 and 5): every include: and redirect= followed, every
DNS-querying term counted (4.6.4), every void lookup noted, and what such a sender finally gets.

Pure apart from the two functions it is given, `fetch(name, rdtype, voids)` (an Answer, or
the LookupFailed of a failed lookup, which leaves `voids` untested) and `prefetch(queries)`:
the check hands it the run's DNS session, so nothing escapes the configured resolvers and
nothing outlives the run.

A "catch-all" is a term that matches every sender of an address family: `all`, `ip4:x/0`,
`ip6:x/0`, `a/0` and `mx//0` with addresses, `exists:` of a fixed name that exists, and an
include: whose own tree passes everyone. The first catch-all a sender reaches decides its
result, so the tree lets the whole internet pass when that first catch-all is a pass.

Left to the receiver, since they depend on the sender: names built from sender macros (%{i},
%{s}, ...; only %{d} is expanded), `ptr` (counted and reported, never resolved, so its limit of
10 names is not checked), and `exp=` (never fetched: its text changes no verdict).
"""

import re
import urllib.parse
from dataclasses import dataclass, field

from django.utils.translation import gettext_noop

from domains.checks.spf_syntax import MACRO, Record, Term, is_spf_record, macro_parts, parse
from domains.messages import Message, english, msg

FAMILIES = ("IPv4", "IPv6")
_NEEDS = {
    "include": ["TXT"],
    "redirect": ["TXT"],
    "a": ["A", "AAAA"],
    "mx": ["MX"],
    "exists": ["A"],
}
LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
VOID_LIMIT = 2
MX_LIMIT = 10
# Receivers give up at 11 lookups; we go on to report the whole count, but ask DNS about no
# term past this many (which also bounds the records walked).
LOOKUP_CAP = 40
ARROW = " -> "


@dataclass(frozen=True)
class Outcome:
    """What a sender of one family, matched by no earlier term, gets."""

    result: str  # pass, fail, softfail, neutral, permerror or temperror
    path: tuple[str, ...]  # the domain, the include:/redirect= terms, then the deciding term
    record: str = ""  # the record that holds the deciding term
    implicit: bool = False  # no `all` and no redirect: neutral by default (RFC 7208 4.7)

    @property
    def trail(self) -> str:
        return ARROW.join(self.path)


@dataclass(frozen=True)
class Issue:
    kind: str  # the finding id
    detail: str  # in English
    severity: str = ""  # when the evidence calls for another than the catalogue's
    message: Message | None = None  # the evidence to translate (findings.localized)


@dataclass
class Tree:
    domain: str
    issues: list[Issue] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)  # the path of every DNS-querying term
    void: dict[str, list[str]] = field(default_factory=lambda: {f: [] for f in FAMILIES})
    failures: list[tuple[object, str]] = field(default_factory=list)  # (LookupFailed, path)
    ptr: list[str] = field(default_factory=list)
    outcome: dict[str, Outcome] = field(default_factory=dict)
    authorises: bool = False  # some term can pass a sender
    walked: int = 0

    def add(self, kind: str, detail: str | Message, severity: str = "") -> None:
        if isinstance(detail, Message):
            self.issues.append(Issue(kind, english(detail), severity, detail))
        else:
            self.issues.append(Issue(kind, detail, severity))


def walk(domain: str, record: Record, fetch, prefetch) -> Tree:
    """Evaluate `record` (the domain's own, already parsed and free of syntax errors)."""
    tree = Tree(domain)
    tree.outcome = _Walker(tree, fetch, prefetch).evaluate(domain, record, (domain,), (domain,))
    _judge_limits(tree)
    return tree


class _Walker:
    def __init__(self, tree: Tree, fetch, prefetch):
        self.tree, self.fetch, self.prefetch = tree, fetch, prefetch

    def evaluate(self, domain: str, record: Record, path: tuple, stack: tuple) -> dict:
        """{family: Outcome} for a sender no earlier term matched."""
        self.tree.walked += 1
        self._prefetch(domain, record)
        decided: dict[str, Outcome] = {}
        for term in record.evaluated:
            here = (*path, term.text)
            if term.looks_up:
                self.tree.lookups.append(ARROW.join(here))
                if self._capped:
                    continue  # counted, not asked: every receiver gave up long before
            matched = self._mechanism(domain, record.text, term, here, stack)
            for family, outcome in matched.items():
                decided.setdefault(family, outcome)
            if len(decided) == len(FAMILIES):
                return decided
        if record.redirect is not None:
            term = record.redirect
            here = (*path, term.text)
            self.tree.lookups.append(ARROW.join(here))
            followed = {} if self._capped else self._follow(domain, term, here, stack)
            for family, outcome in followed.items():
                decided.setdefault(family, outcome)
        for family in FAMILIES:
            decided.setdefault(family, Outcome("neutral", path, record.text, implicit=True))
        return decided

    @property
    def _capped(self) -> bool:
        return len(self.tree.lookups) > LOOKUP_CAP

    def _mechanism(self, domain: str, text: str, term: Term, here: tuple, stack: tuple) -> dict:
        """{family: Outcome} for the families this term matches whoever sends."""
        if term.result == "pass":
            self.tree.authorises = True
        if term.name == "include":
            return self._include(domain, term, here, stack)
        families = self._catch_all(domain, term, here)
        if families == "permerror":
            return dict.fromkeys(FAMILIES, Outcome("permerror", here, text))
        return {f: Outcome(term.result, here, text) for f in families}

    def _include(self, domain: str, term: Term, here: tuple, stack: tuple) -> dict:
        inner = self._follow(domain, term, here, stack)
        # An include matches when its tree passes; its fail, softfail or neutral only means
        # "not matched here" and evaluation goes on (RFC 7208 5.2). Errors end it.
        found = {}
        for family, outcome in inner.items():
            if outcome.result == "pass":
                found[family] = Outcome(term.result, outcome.path, outcome.record)
            elif outcome.result in ("permerror", "temperror"):
                found[family] = outcome
        return found

    def _follow(self, domain: str, term: Term, here: tuple, stack: tuple) -> dict:
        """The outcome of the record an include: or redirect= points at."""
        target = expand(term.domain_spec, domain)
        if target is None:
            return {}  # depends on the sender (a macro): cannot be followed here
        if target in stack:
            self.tree.add(
                "spf.include_loop",
                msg(gettext_noop("%(path)s (already evaluated above)"), path=ARROW.join(here)),
            )
            return dict.fromkeys(FAMILIES, Outcome("permerror", here))
        record = self._record(target, term, here)
        if isinstance(record, str):
            return dict.fromkeys(FAMILIES, Outcome(record, here))
        return self.evaluate(target, record, here, (*stack, target))

    def _record(self, target: str, term: Term, here: tuple) -> Record | str:
        """The target's one parsed SPF record, or "permerror"/"temperror" (with its issue)."""
        trail = ARROW.join(here)
        answer = self.fetch(target, "TXT", f"SPF beyond {trail} not evaluated")
        if isinstance(answer, Exception):
            self.tree.failures.append((answer, trail))
            return "temperror"
        records = [t for t in answer.texts if is_spf_record(t)]
        if not records:
            kind = "spf.redirect_not_found" if term.modifier else "spf.include_not_found"
            self.tree.add(
                kind,
                msg(
                    gettext_noop("%(trail)s: %(target)s has no SPF record"),
                    trail=trail,
                    target=target,
                ),
            )
            return "permerror"
        if len(records) > 1:
            listed = " | ".join(records)
            self.tree.add(
                "spf.multiple_records",
                msg(
                    gettext_noop("%(trail)s: %(target)s has %(records)s"),
                    trail=trail,
                    target=target,
                    records=listed,
                ),
            )
            return "permerror"
        record = parse(records[0])
        if record.errors:
            detail = msg(
                gettext_noop('%(name)s: "%(record)s": %(errors)s'),
                name=trail,
                record=records[0],
                errors=[e.translatable() for e in record.errors],
            )
            self.tree.add("spf.syntax_error", detail)
            return "permerror"
        return record

    def _catch_all(self, domain: str, term: Term, here: tuple) -> tuple[str, ...] | str:
        """The families for which this (non-include) term matches every sender, or
        "permerror" when it is one."""
        name = term.name
        if name == "all":
            return FAMILIES
        if name in ("ip4", "ip6"):
            family = "IPv4" if name == "ip4" else "IPv6"
            return (family,) if term.network.prefixlen == 0 else ()
        if name == "ptr" or "%{p" in (term.domain_spec or "").lower():
            self.tree.ptr.append(ARROW.join(here))
        if name not in ("a", "mx", "exists"):
            return ()
        target = expand(term.domain_spec, domain) if term.domain_spec else domain
        if target is None:
            return ()  # a name built from the sender: nothing to say without one
        return getattr(self, "_" + name)(target, term, ARROW.join(here))

    def _a(self, target: str, term: Term, trail: str) -> tuple[str, ...]:
        found = []
        for family, rdtype, length in (("IPv4", "A", term.cidr4), ("IPv6", "AAAA", term.cidr6)):
            answer = self.fetch(target, rdtype, _untested(trail))
            if isinstance(answer, Exception):
                self.tree.failures.append((answer, trail))
            elif not answer.exists:
                self.tree.void[family].append(f"{trail} ({rdtype} {target}: none)")
            elif length == 0:
                found.append(family)
        return tuple(found)

    def _mx(self, target: str, term: Term, trail: str) -> tuple[str, ...] | str:
        answer = self.fetch(target, "MX", _untested(trail))
        if isinstance(answer, Exception):
            self.tree.failures.append((answer, trail))
            return ()
        if not answer.exists:
            for family in FAMILIES:
                self.tree.void[family].append(f"{trail} (MX {target}: none)")
            return ()
        hosts = sorted({str(r.exchange).rstrip(".").lower() for r in answer.rdatas} - {""})
        if len(answer.rdatas) > MX_LIMIT:
            self.tree.add(
                "spf.too_many_mx",
                msg(
                    gettext_noop(
                        "%(trail)s: %(target)s has %(count)s MX records (at most %(limit)s)"
                    ),
                    trail=trail,
                    target=target,
                    count=len(answer.rdatas),
                    limit=MX_LIMIT,
                ),
            )
            return "permerror"  # for everyone: no later term is reached
        if 0 not in (term.cidr4, term.cidr6):
            return ()
        found = []
        for family, rdtype, length in (("IPv4", "A", term.cidr4), ("IPv6", "AAAA", term.cidr6)):
            untested = _untested(trail)
            answers = [self.fetch(h, rdtype, untested) for h in hosts] if length == 0 else []
            if any(not isinstance(a, Exception) and a.exists for a in answers):
                found.append(family)
        return tuple(found)

    def _exists(self, target: str, term: Term, trail: str) -> tuple[str, ...]:
        # Always A, whatever the sender's family (RFC 7208 5.7).
        answer = self.fetch(target, "A", _untested(trail))
        if isinstance(answer, Exception):
            self.tree.failures.append((answer, trail))
            return ()
        if not answer.exists:
            for family in FAMILIES:
                self.tree.void[family].append(f"{trail} (A {target}: none)")
            return ()
        return FAMILIES  # a fixed name that exists matches every sender

    def _prefetch(self, domain: str, record: Record) -> None:
        """Ask for everything this record's terms will need, all at once."""
        wanted, room = [], max(0, LOOKUP_CAP - len(self.tree.lookups))
        for term in [t for t in [*record.evaluated, record.redirect] if t and t.looks_up][:room]:
            if term.name == "ptr":
                continue
            target = expand(term.domain_spec, domain) if term.domain_spec else domain
            if target is None:
                continue
            wanted += [(target, t) for t in _NEEDS[term.name]]
        self.prefetch(wanted)


def _untested(trail: str) -> str:
    return f"SPF term {trail} not evaluated (void lookups not fully counted)"


def _judge_limits(tree: Tree) -> None:
    if len(tree.lookups) > LOOKUP_LIMIT:
        if len(tree.lookups) > LOOKUP_CAP:
            text = gettext_noop(
                "at least %(count)s DNS-querying terms (at most %(limit)s); receivers give up at "
                "the %(next)sth: %(term)s"
            )
        else:
            text = gettext_noop(
                "%(count)s DNS-querying terms (at most %(limit)s); receivers give up at the "
                "%(next)sth: %(term)s"
            )
        tree.add(
            "spf.too_many_lookups",
            msg(
                text,
                count=len(tree.lookups),
                limit=LOOKUP_LIMIT,
                next=LOOKUP_LIMIT + 1,
                term=tree.lookups[LOOKUP_LIMIT],
            ),
        )
    worst = max(FAMILIES, key=lambda f: len(tree.void[f]))
    if len(tree.void[worst]) > VOID_LIMIT:
        families = [f for f in FAMILIES if len(tree.void[f]) > VOID_LIMIT]
        senders = " and ".join(families)
        listed = "; ".join(tree.void[worst])
        # Only IPv6 senders over the limit: the domain's own (IPv4) servers still pass, and
        # unlisted IPv6 senders get a permerror instead of a fail, which passes nothing.
        tree.add(
            "spf.too_many_void_lookups",
            msg(
                gettext_noop(
                    "%(count)s void lookups for %(senders)s senders (at most %(limit)s): %(listed)s"
                )
                if len(families) == 1
                else gettext_noop(
                    "%(count)s void lookups for IPv4 and IPv6 senders (at most %(limit)s): "
                    "%(listed)s"
                ),
                count=len(tree.void[worst]),
                senders=senders,
                limit=VOID_LIMIT,
                listed=listed,
            ),
            "" if "IPv4" in families else "medium",
        )


def expand(spec: str, domain: str) -> str | None:
    """A domain-spec with its macros expanded, when it uses none but %{d} (the domain whose
    record is evaluated); None when it depends on the sender (RFC 7208 7.3)."""
    out = []
    for part in macro_parts(spec):
        if part in ("%%", "%_", "%-"):
            out.append({"%%": "%", "%_": " ", "%-": "%20"}[part])
        elif part.startswith("%{"):
            letter, digits, reverse, delimiters = MACRO.fullmatch(part[2:-1]).groups()
            if letter.lower() != "d":
                return None
            pieces = re.split("[" + re.escape(delimiters) + "]", domain) if delimiters else None
            pieces = pieces or domain.split(".")
            if reverse:
                pieces.reverse()
            if digits:
                pieces = pieces[-int(digits) :]
            value = ".".join(pieces)
            out.append(urllib.parse.quote(value, safe="") if letter.isupper() else value)
        else:
            out.append(part)
    name = "".join(out).rstrip(".").lower()
    while len(name) > 253 and "." in name:  # 7.3: drop labels from the left until it fits
        name = name.split(".", 1)[1]
    if "\\" in name or any(not label or len(label) > 63 for label in name.split(".")):
        return None  # not a name to ask DNS about (an empty label, or a zone-file escape)
    return name
