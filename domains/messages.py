"""Texts to translate that are not known in advance: the catalogue's titles and fixes (Text)
and the evidence of findings (Message). Both keep their English, the msgid, which the engine
can render without any translation machinery (its worker processes have none), and render in
the active language for a reader. Arguments are data (names, records, numbers), never
translated; a Message may hold Messages (parts of the evidence, lines of it).
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.utils.formats import number_format
from django.utils.translation import get_language, gettext, gettext_noop


def _filled(template: str, params: dict) -> str:
    """The template with each {name} replaced: not str.format, so that the {domain} of a
    remediation stays for finding() to fill in."""
    for name, value in params.items():
        template = template.replace("{" + name + "}", value)
    return template


@dataclass(frozen=True)
class Text:
    """A title or fix of the catalogue: its English (the msgid, marked with gettext_noop) and
    the {placeholders} filled in for a kind (a service's name). str() translates it into the
    active language; `english` needs no translation machinery (the engine's worker processes
    have none)."""

    msgid: str
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return _filled(gettext(self.msgid), dict(self.params))

    @property
    def english(self) -> str:
        return _filled(self.msgid, dict(self.params))


def fill(msgid: str, **params: str) -> Text:
    return Text(msgid, tuple(params.items()))


class Message(NamedTuple):
    """Evidence to translate: `text` is the English template (the msgid, marked for
    makemessages with gettext_noop at the call site), with %(name)s placeholders for `args`.
    Arguments are data (names, records, numbers): shown as they are, numbers in the locale."""

    text: str
    args: dict

    def render(self) -> str:
        """In the active language."""
        return gettext(self.text) % {name: _shown(value) for name, value in self.args.items()}

    def english(self) -> str:
        """As the English template says, with no translation machinery (worker processes)."""
        return self.text % {name: _shown(value, True) for name, value in self.args.items()}

    def as_json(self) -> dict:
        return {"text": self.text, "args": self.args}


def english(message: Message) -> str:
    return message.english()


def lines(parts: list[Message]) -> Message:
    """Evidence lines (one per server, say) in the order of their English, each once."""
    unique = {english(part): part for part in parts}
    return msg(gettext_noop("%(lines)s."), lines=[unique[key] for key in sorted(unique)])


def msg(text: str, **args) -> Message:
    return Message(text, {name: _plain(value) for name, value in args.items()})


def _plain(value):
    """An argument as JSON can store it (a Message as its dict: rendered in turn)."""
    if isinstance(value, Message):
        return value.as_json()
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple) and any(isinstance(v, Message) for v in value):
        return [_plain(v) for v in value]  # evidence lines: shown one after the other
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)


def _shown(value, english: bool = False) -> str:
    if isinstance(value, dict) and "text" in value:
        nested = Message(value["text"], value.get("args") or {})
        return nested.english() if english else nested.render()
    if isinstance(value, list):
        return "; ".join(_shown(v, english) for v in value)
    if isinstance(value, float) and not english:
        return number_format(value, use_l10n=True)
    return "" if value is None else str(value)


def reading_english() -> bool:
    """Whether the active language is English, the language findings are stored in."""
    return (get_language() or "en").split("-")[0] == "en"


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@functools.cache
def _readers(templates: tuple[str, ...]) -> list[tuple[re.Pattern, str]]:
    """Each template as a pattern that reads its %(name)s values back, the most specific (the
    most fixed text) first: "the report has no report_id" before "the report has no %(key)s"."""
    found = []
    for template in templates:
        parts = _PLACEHOLDER.split(template)  # text, name, text, name, ..., text
        pattern = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        fixed = sum(len(part) for part in parts[::2])
        found.append((fixed, re.compile(f"^{pattern}$", re.S), template))
    found.sort(key=lambda item: -item[0])
    return [(pattern, template) for _, pattern, template in found]


def read_back(text: str, templates: Sequence[str]) -> tuple[str, dict[str, str]] | None:
    """The template an English text stored earlier was made from, and its values, so that it
    can be said again in the reader's language; None when no template makes that text."""
    for pattern, template in _readers(tuple(templates)):
        found = pattern.match(text)
        if found:
            return template, found.groupdict()
    return None
