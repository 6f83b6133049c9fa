"""Ids from requests (paths and form values) are checked against the range of the database's
ids before any query: a number past it is "not found", never an overflow error (a 500)."""

MAX_ID = 2**63 - 1  # BigAutoField, and the largest integer SQLite and PostgreSQL store


def parse_id(value) -> int | None:
    """The id in a form or query value, or None when it is not one."""
    text = str(value if value is not None else "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


class IdConverter:
    """`<id:pk>` in URL patterns: a positive id within range; anything else does not match."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(f"not an id: {value}")
        return number

    def to_url(self, value) -> str:
        return str(int(value))
