"""The audit trail's keys: HMAC-SHA256 keys kept outside the database.

`COMMSDESK_AUDIT_KEY` (or the file `[audit] key_file` names) holds one key or several,
separated by commas, spaces or new lines: the first signs new records, the others only
verify older ones (key rotation: put the new key first and keep the old ones after it).
Each key's id, stored on every record it signs, is derived from the key itself
(`key_id`), so a record names its key without revealing it, and a wrong key is told apart
from a changed record.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import weakref
from dataclasses import dataclass
from typing import Any

ENV_VAR = "COMMSDESK_AUDIT_KEY"
MIN_KEY_CHARS = 32
_ID_LABEL = b"commsdesk audit key id"
_SPLIT = re.compile(r"[\s,]+")


class AuditKeyError(ValueError):
    """The audit key is missing or unusable (one sentence)."""


def key_id(secret: bytes) -> str:
    """A key's public id: 12 hex digits of an HMAC under the key (reveals nothing of it)."""
    return hmac.new(secret, _ID_LABEL, hashlib.sha256).hexdigest()[:12]


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, secret); the first signs

    def __repr__(self) -> str:  # never the secrets
        return f"Keyring(ids={[k for k, _ in self.keys]})"

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def current(self) -> bytes:
        return self.keys[0][1]

    def get(self, kid: str) -> bytes | None:
        return next((s for k, s in self.keys if k == kid), None)

    def ids(self) -> list[str]:
        return [k for k, _ in self.keys]

    def secrets(self) -> list[str]:
        return [s.decode() for _, s in self.keys]


def parse_keys(text: str, source: str = ENV_VAR) -> Keyring:
    parts = [p for p in _SPLIT.split(text.strip()) if p]
    if not parts:
        raise AuditKeyError(f"{source} is empty")
    keys: list[tuple[str, bytes]] = []
    for n, part in enumerate(parts, 1):
        if len(part) < MIN_KEY_CHARS:
            raise AuditKeyError(
                f"{source}: key {n} is too short ({len(part)} characters; at least "
                f"{MIN_KEY_CHARS}: make one with `python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\"`)")
        secret = part.encode()
        keys.append((key_id(secret), secret))
    return Keyring(tuple(keys))


def pads(secret: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hash states for a key, computed once: a record's
    HMAC is then two `copy()`s and two short updates (`hmac.digest` sets the key up
    again on every call, which costs more than hashing a record)."""
    if len(secret) > 64:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret))
    return inner, outer


def sign(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


# the keyring each engine's writers sign with (set by Runtime.create); else the environment
_KEYRINGS: weakref.WeakKeyDictionary[Any, Keyring] = weakref.WeakKeyDictionary()


def use_keyring(engine: Any, keyring: Keyring) -> None:
    _KEYRINGS[engine] = keyring


def keyring_for(engine: Any) -> Keyring | None:
    """The keyring for an engine: the one set for it, else `COMMSDESK_AUDIT_KEY`."""
    ring = _KEYRINGS.get(engine) if engine is not None else None
    if ring is not None:
        return ring
    text = os.environ.get(ENV_VAR, "").strip()
    return parse_keys(text) if text else None
