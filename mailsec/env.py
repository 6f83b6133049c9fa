"""Strict parsing of mailsec's environment variables.

Every helper names the variable in its error, so a typo in a deployment fails at start-up with
a message that says which setting to fix, instead of running with a silently wrong value.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
MIN_SECRET_KEY_LENGTH = 32


class Env:
    """Reads variables from a mapping (``os.environ`` by default, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        """The value with surrounding blanks removed; an empty value counts as unset."""
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a boolean: use one of "
            f"{', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}."
        )

    def int(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
        if not minimum <= number <= maximum:
            raise ImproperlyConfigured(
                f"{name}={number} is out of range: it must be between {minimum} and {maximum}."
            )
        return number

    def choice(self, name: str, default: str, choices: list[str]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
        return value

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        items = [item.strip() for item in value.split(",")]
        if any(not item for item in items):
            raise ImproperlyConfigured(f"{name}={value!r} has an empty item in its list.")
        return items

    def secret(self, name: str) -> str | None:
        """A secret from NAME or from the file named by NAME_FILE (not both)."""
        value = self.raw(name)
        file_name = self.raw(f"{name}_FILE")
        if value is not None and file_name is not None:
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
        if file_name is None:
            return value
        return read_secret_file(f"{name}_FILE", Path(file_name))

    def secret_key(self, name: str, fallback_file: Path) -> str:
        """Django's SECRET_KEY: from the environment, else the file `make run` generated."""
        key = self.secret(name)
        if key is None:
            if not fallback_file.exists():
                raise ImproperlyConfigured(
                    f"No secret key: set {name} or {name}_FILE, or run `make run` once to "
                    f"generate {fallback_file}."
                )
            key = read_secret_file(str(fallback_file), fallback_file)
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ImproperlyConfigured(
                f"{name} is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters."
            )
        return key

    def fernet_keys(self, name: str, fallback_file: Path) -> list[str]:
        """Keys that encrypt stored secrets: a comma-separated list of Fernet keys, the first
        encrypting, all decrypting (so an old key can be retired). From the environment, else
        the file `make run` generated; [] when neither exists (secrets then cannot be stored)."""
        from cryptography.fernet import Fernet

        value = self.secret(name)
        if value is None and fallback_file.exists():
            value = read_secret_file(str(fallback_file), fallback_file)
        keys = [key.strip() for key in (value or "").split(",") if key.strip()]
        for number, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except ValueError:
                raise ImproperlyConfigured(
                    f"{name}: key {number} is not a Fernet key (32 url-safe base64-encoded "
                    "bytes); make one with `python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'`."
                ) from None
        return keys

    def database(self, name: str, default: str) -> dict:
        value = self.raw(name) or default
        try:
            config = dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True)
        except (ValueError, dj_database_url.UnknownSchemeError) as exc:
            raise ImproperlyConfigured(f"{name} is not a usable database URL: {exc}") from None
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} does not name a database.")
        return dict(config)

    def redis_url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            scheme = value.split(":")[0]  # not the rest: it may hold a password
            raise ImproperlyConfigured(
                f"{name} must start with redis://, rediss:// or unix:// (got {scheme}:)."
            )
        return value

    def site_url(self, name: str) -> str:
        """The public base URL of the app ("https://mailsec.example.org"), or "" when unset."""
        value = (self.raw(name) or "").strip().rstrip("/")
        if value and (
            not value.startswith(("http://", "https://")) or "/" in value.split("://", 1)[1]
        ):
            raise ImproperlyConfigured(
                f"{name} must be a base URL like https://mailsec.example.org (no path)."
            )
        return value

    def nameservers(self, name: str) -> list[tuple[str, int]]:
        """A comma-separated list of IP[:PORT] ("127.0.0.1:5353", "[::1]:53", "::1")."""
        value = self.raw(name)
        if value is None:
            return []
        servers = []
        for item in self.list(name, []):
            try:
                servers.append(parse_nameserver(item))
            except ValueError as exc:
                raise ImproperlyConfigured(f"{name}: {exc}") from None
        return servers


def read_secret_file(name: str, path: Path) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {exc.strerror}.") from None
    if not value:
        raise ImproperlyConfigured(f"{name}: {path} is empty.")
    return value


def parse_nameserver(item: str) -> tuple[str, int]:
    """'127.0.0.1' -> ('127.0.0.1', 53); '[::1]:5353' -> ('::1', 5353)."""
    host, port = item, "53"
    if item.startswith("["):
        host, sep, rest = item[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{item!r} is not IP[:PORT]; write an IPv6 address as [::1]:5353.")
        port = rest[1:] or "53"
    elif item.count(":") == 1:
        host, port = item.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{item!r}: {host!r} is not an IP address.") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{item!r}: {port!r} is not a port number (1-65535).")
    return str(address), int(port)
