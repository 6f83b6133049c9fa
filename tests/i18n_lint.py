"""Words a reader sees in a template but that no translation tag covers (issue 18).

A template is cut by Django's own lexer: what {% translate %} and {% blocktranslate %} say is
translated, variables come from elsewhere, comments are nobody's. The remaining text is read as
HTML: its text and the attributes a reader sees or hears (title, aria-label, placeholder, alt,
a button's value) must hold no word, but for names that are the same in every language (the
allow-list). Literal strings given to filters that show them (`default:"Never"`) or handed
to an included template (`with noun="reports"`) count too, and so does `|pluralize` (an
English plural: {% blocktranslate count %} says it in each language).

A line may opt out with the Django comment `{# notranslate #}`, for text that is a name.

    .venv/bin/python -m tests.i18n_lint templates/mailsec/*.html   # file:line: text
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

from django.template.base import Lexer, TokenType

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"

# Names written the same in English and French (and units, and this product's name).
ALLOWED = frozenset({
    "mailsec", "DMARC", "SPF", "DKIM", "MTA", "STS", "TLS", "RPT", "DNS", "DNSSEC", "DANE",
    "BIMI", "STARTTLS", "IMAP", "POP3", "SMTP", "MX", "IP", "IPv4", "IPv6", "CSV", "JSON", "XML",
    "API", "URL", "HTTPS", "HTTP", "TXT", "CNAME", "PTR", "TLSA", "CAA", "ARC", "UTC", "ASN",
    "rua", "ruf", "p", "sp", "np", "pct", "adkim", "aspf",
})  # fmt: skip
# Elements whose text is code, a command, a record: what the reader types, never translated.
LITERAL_ELEMENTS = frozenset({"code", "pre", "kbd", "samp", "script", "style"})
VISIBLE_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
# What stands for a tag or a variable once the template is reduced to HTML (never a letter).
HOLE = "\x00"
PRAGMA = "{# notranslate #}"
SHOWN_LITERALS = re.compile(r"\|(?:default|default_if_none|yesno):\"([^\"]*)\"")
# A string an {% include %} hands its template (with noun="reports"): shown there, most likely.
INCLUDED_LITERALS = re.compile(r"\b\w+=\"([^\"]*)\"")
WORD = re.compile(r"[^\s\x00]+")
EDGES = re.compile(r"^\W+|\W+$")  # punctuation around a word


def untranslated_words(text: str) -> list[str]:
    """The words of `text` that need a translation (none: it is allowed as it is)."""
    found = []
    for word in WORD.findall(text):
        word = EDGES.sub("", word)
        if not any(ch.isalpha() for ch in word):
            continue
        parts = [part for part in re.split(r"[-/=]", word) if part]
        if all(part in ALLOWED or not any(ch.isalpha() for ch in part) for part in parts):
            continue
        found.append(word)
    return found


def _reduce(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The template as HTML with every tag and variable a HOLE (newlines kept, so that lines
    still count), and the literals shown by filters or handed to includes, with their line."""
    out, literals = [], []
    depth = {"blocktranslate": 0, "comment": 0, "verbatim": 0}
    for token in Lexer(source).tokenize():
        text = token.contents
        # Only text spans lines (a Django tag is on one line): keep its newlines when skipped.
        lines = "\n" * text.count("\n") if token.token_type == TokenType.TEXT else ""
        name = text.split()[0] if token.token_type == TokenType.BLOCK and text.split() else ""
        if name:
            for block in depth:
                aliases = {block, "blocktrans"} if block == "blocktranslate" else {block}
                if name in aliases:
                    depth[block] += 1
                elif name in {f"end{alias}" for alias in aliases}:
                    depth[block] -= 1
        if token.token_type in (TokenType.VAR, TokenType.BLOCK) and not any(depth.values()):
            literals += [(token.lineno, literal) for literal in SHOWN_LITERALS.findall(text)]
            if "|pluralize" in text:  # English plurals; French counts 0 as one
                literals.append((token.lineno, "|pluralize: use {% blocktranslate count %}"))
            if name == "include" and " with " in text:
                with_part = text.split(" with ", 1)[1]
                literals += [(token.lineno, lit) for lit in INCLUDED_LITERALS.findall(with_part)]
        if token.token_type == TokenType.TEXT and not any(depth.values()):
            out.append(text)
        else:
            out.append(HOLE + lines)
    return "".join(out), literals


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hits: list[tuple[int, str]] = []
        self.literal_depth = 0

    def _check(self, text: str, what: str = "") -> None:
        words = untranslated_words(text)
        if words:
            shown = " ".join(text.replace(HOLE, "…").split())
            # The line of the first word, not of the text's start (often a newline before it).
            line = self.getpos()[0] + text[: text.find(words[0])].count("\n")
            self.hits.append((line, f"{what}{shown}"))

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in VISIBLE_ATTRIBUTES:
            if attributes.get(name):
                self._check(attributes[name], f"{name}=")
        kind = (attributes.get("type") or "").lower()
        # A <button>'s value is sent, never shown (its content is); an input button shows it.
        if attributes.get("value") and tag == "input" and kind in {"submit", "button", "reset"}:
            self._check(attributes["value"], "value=")
        if tag in LITERAL_ELEMENTS:
            self.literal_depth += 1

    def handle_endtag(self, tag):
        if tag in LITERAL_ELEMENTS and self.literal_depth:
            self.literal_depth -= 1

    def handle_data(self, data):
        if not self.literal_depth:
            self._check(data)


def lint(path: Path) -> list[str]:
    """`file:line: text` for each piece of untranslated text in the template at `path`."""
    source = path.read_text()
    exempt = {number for number, line in enumerate(source.splitlines(), 1) if PRAGMA in line}
    html, literals = _reduce(source)
    hits = [(line, f'literal "{text}"') for line, text in literals if untranslated_words(text)]
    if path.suffix == ".html":
        reader = _Reader()
        reader.feed(html)
        reader.close()
        hits += reader.hits
    else:  # plain text (e-mails): every line is read
        for number, line in enumerate(html.splitlines(), 1):
            if untranslated_words(line):
                hits.append((number, " ".join(line.replace(HOLE, "…").split())))
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return [f"{name}:{line}: {text}" for line, text in sorted(hits) if line not in exempt]


def templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"})


if __name__ == "__main__":
    paths = [Path(arg).resolve() for arg in sys.argv[1:]] or templates()
    found = [hit for path in paths for hit in lint(path)]
    print("\n".join(found))
    sys.exit(1 if found else 0)
