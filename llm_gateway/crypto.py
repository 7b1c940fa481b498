"""Virtual-key secrets, their hashes, and provider-credential encryption.

A virtual key is ``sk-`` plus 32 random bytes (URL-safe base64); a custom one has at least
``CUSTOM_KEY_MIN_LENGTH`` characters. Only its SHA-256 is stored, with a display form that shows no
more than its last 4 characters (``sk-...wxYz``: the ``sk-`` prefix is no secret); the secret itself
is shown once. Provider credentials are encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, from ``cryptography``) under ``GATEWAY_ENCRYPTION_KEY``, or under a key
derived from Django's SECRET_KEY when that is not set (the embedded default).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from llm_gateway.conf import gateway_setting

KEY_PREFIX = "sk-"
KEY_RANDOM_BYTES = 32
# A custom secret's least length, prefix included: 29 characters after ``sk-`` are still ~170 bits
# when random, and a short one would be guessed.
CUSTOM_KEY_MIN_LENGTH = 32
# How many of a secret's characters its display form shows.
DISPLAY_SECRET_CHARACTERS = 4


def virtual_key_secret_generate() -> str:
    """Return a new virtual-key secret."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def virtual_key_hash(secret: str) -> str:
    """Return the stored form of a key secret (SHA-256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def virtual_key_display(secret: str) -> str:
    """Return the short form shown wherever a key is named: ``sk-...wxYz``, its last 4 characters."""
    return f"{KEY_PREFIX}...{secret[-DISPLAY_SECRET_CHARACTERS:]}"


def custom_secret_problem(secret: str) -> str | None:
    """Return why ``secret`` may not be a key's custom secret, or None when it may."""
    if not secret.startswith(KEY_PREFIX):
        return f"A custom key must start with '{KEY_PREFIX}'."
    if len(secret) < CUSTOM_KEY_MIN_LENGTH:
        return f"A custom key needs at least {CUSTOM_KEY_MIN_LENGTH} characters, '{KEY_PREFIX}' included."
    return None


def secrets_equal(left: str, right: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(left.encode(), right.encode())


@functools.cache
def _fernet() -> Fernet:
    configured = gateway_setting("ENCRYPTION_KEY")
    if configured:
        return Fernet(configured)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"llm-gateway credentials").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def credential_encrypt(plaintext: str) -> str:
    """Return a provider credential encrypted for storage."""
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


class CredentialDecryptionError(Exception):
    """A stored credential cannot be decrypted: the encryption key changed."""


def credential_decrypt(ciphertext: str) -> str:
    """Return a stored provider credential in clear."""
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise CredentialDecryptionError(
            "A stored provider credential cannot be decrypted: GATEWAY_ENCRYPTION_KEY (or the secret key "
            "it defaults to) changed since it was saved. Set the old key, or enter the credential again."
        ) from None
