"""Secrets stored in the database (mailbox passwords), encrypted with MAILSEC_ENCRYPTION_KEY.

Fernet (AES-128-CBC with HMAC-SHA256) from the `cryptography` package; several keys may be
configured, the first encrypting and all decrypting, so a key can be rotated.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts (the key was lost or changed)."""


def _fernet() -> MultiFernet:
    keys = settings.MAILSEC_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured(
            "No encryption key for stored passwords: set MAILSEC_ENCRYPTION_KEY (or "
            "MAILSEC_ENCRYPTION_KEY_FILE), or run `make run` once to generate var/encryption_key."
        )
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "The stored password cannot be decrypted with the configured MAILSEC_ENCRYPTION_KEY "
            "(was the key changed?): enter the password again."
        ) from None


def reencrypt(token: str) -> str:
    """The token under the current first key (after adding a new key in front)."""
    return _fernet().rotate(token.encode()).decode()
