"""Protection of personal data: AES-GCM encryption with key ids, blind indexes, masking.

National ids and bank account numbers are stored as ``<key id>:<base64(nonce || ciphertext)>``
so keys can rotate: new values use the active key, old values name the key that opens them.
Equality lookups use a keyed blind index, HMAC-SHA256 under a separate key, so the database
never holds a value that can be reversed or brute-forced without the key.

Keys come from ``$CHOPAY_KEYS_DIR/data-keys.json`` (created by ``chopay keys generate``)::

    {"active": "d1", "keys": {"d1": "<base64 32 bytes>"}, "index_key": "<base64 32 bytes>"}

Features get the keys with :func:`data_keys` and declare each column that holds ciphertext with
:func:`protected_column`, naming the context its values are bound to (the AES-GCM associated
data, e.g. ``"beneficiaries.national_id"``), so that key rotation can find and re-encrypt them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app

from chopay.errors import TITLES, ChopayError

DATA_KEYS_FILE = "data-keys.json"


class DataKeyError(Exception):
    """A data key is missing or a ciphertext cannot be opened."""


class DataKeysMissing(ChopayError):
    """The service has no data keys: a deployment fault, answered as 503 until it is fixed."""

    status = 503
    code = "data_keys_missing"
    title = TITLES[503]


@dataclass(frozen=True)
class DataKeys:
    """The data-encryption keys and the blind-index key."""

    active: str
    keys: dict[str, bytes]
    index_key: bytes

    @classmethod
    def generate(cls) -> DataKeys:
        """Return a fresh key set with one active key."""
        return cls("d1", {"d1": AESGCM.generate_key(bit_length=256)}, secrets.token_bytes(32))

    @classmethod
    def load(cls, path: Path) -> DataKeys:
        """Read a key set from ``path``."""
        raw = json.loads(path.read_text())
        keys = {kid: base64.b64decode(value) for kid, value in raw["keys"].items()}
        if raw["active"] not in keys:
            raise DataKeyError(f"{path}: the active key {raw['active']!r} is not in 'keys'")
        return cls(raw["active"], keys, base64.b64decode(raw["index_key"]))

    def dump(self) -> str:
        """Serialise the key set as JSON."""
        return json.dumps(
            {
                "active": self.active,
                "keys": {kid: base64.b64encode(k).decode() for kid, k in self.keys.items()},
                "index_key": base64.b64encode(self.index_key).decode(),
            },
            indent=2,
        )

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` under the active key, bound to ``context`` (e.g. the column)."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, context: str) -> str:
        """Open a value made by :meth:`encrypt` with the key it names."""
        kid, _, body = token.partition(":")
        key = self.keys.get(kid)
        if key is None:
            raise DataKeyError(f"no data key {kid!r}")
        try:
            raw = base64.b64decode(body, validate=True)
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except Exception as exc:  # bad base64, InvalidTag (tampered or wrong context), short nonce
            raise DataKeyError("ciphertext does not open under its key") from exc

    def blind_index(self, value: str, context: str) -> str:
        """Return the keyed lookup hash of ``value`` within ``context``."""
        msg = context.encode() + b"\0" + value.encode()
        return hmac.new(self.index_key, msg, hashlib.sha256).hexdigest()


def mask(value: str, visible: int = 4, lead: int = 0) -> str:
    """Show only the first ``lead`` and the last ``visible`` characters of ``value``."""
    if len(value) <= visible + lead:
        return "*" * len(value)
    return value[:lead] + "*" * (len(value) - visible - lead) + value[-visible:]


def data_keys(app: Flask | None = None) -> DataKeys:
    """Return the data keys of ``app`` (the current app by default), read again when the file changes.

    ``chopay keys rotate-data`` rewrites the file; running processes pick the new active key
    up at their next use instead of encrypting under the old one until they restart.
    """
    target = app if app is not None else current_app
    path = target.config["CHOPAY"].keys_dir / DATA_KEYS_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise DataKeysMissing(
            "The service has no data-encryption keys: an operator must run `chopay keys generate`."
        ) from None
    # Reloaded when the file changes: a key rotation on another host reaches this process.
    cached: tuple[int, DataKeys] | None = target.extensions.get("chopay.data_keys")
    if cached is None or cached[0] != stamp:
        cached = (stamp, DataKeys.load(path))
        target.extensions["chopay.data_keys"] = cached
    return cached[1]


@dataclass(frozen=True)
class ProtectedColumn:
    """A column that stores personal data as ciphertext made by :meth:`DataKeys.encrypt`."""

    table: str
    column: str
    context: str


PROTECTED_COLUMNS: list[ProtectedColumn] = []


def protected_column(table: str, column: str, context: str | None = None) -> ProtectedColumn:
    """Declare that ``table.column`` holds ciphertext bound to ``context`` (default ``table.column``)."""
    found = ProtectedColumn(table, column, context or f"{table}.{column}")
    if found not in PROTECTED_COLUMNS:
        PROTECTED_COLUMNS.append(found)
    return found
