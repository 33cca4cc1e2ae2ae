"""C2SP signed notes with Ed25519, and tlog-checkpoint bodies.

A signed note (https://c2sp.org/signed-note) is a text ending in a newline, a blank line, and
one or more signature lines::

    example.com/ledger
    1024
    kOXbrCLB0nGpo2VQuWJpdPR3i7ilWg0YZGq6Vu8a0mk=

    — example.com/ledger 2B9ldCQ9...base64(key id || signature)...

A signature line is an em dash (U+2014), a space, the key name, a space and the base64 of the
four-byte key id followed by the Ed25519 signature of the text (newline included). The key id
is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.

Keys travel as strings:

* verifier key (``vkey``): ``<name>+<hex key id>+<base64(0x01 || 32-byte public key)>``;
* signer key (``skey``): ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>``,
  the format of Go's ``golang.org/x/mod/sumdb/note``.

Opening a note follows the specification: signatures by unknown keys are ignored, a signature
by a known key that fails to verify rejects the whole note, and a note with no verified
signature by a trusted key is rejected. Rotating keys is therefore a matter of configuration:
verifiers trust the old and the new key at once, and checkpoints signed by either stay valid.

A checkpoint (https://c2sp.org/tlog-checkpoint) is a note whose text is the log origin, the
tree size in decimal and the base64 root hash, one per line, then optional non-empty extension
lines.

Every failure raises :class:`NoteError` with a message that names the line or key at fault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "key_id",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100
"""Notes with more signature lines are refused; the specification asks for at least 16."""

_SIG_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or no trusted signature verifies."""


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the four-byte key id of an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"{what} is not valid base64") from None


def _parse_key(parts: Sequence[str], what: str) -> tuple[str, bytes, bytes]:
    name, id_hex, key64 = parts
    _check_name(name)
    if len(id_hex) != 8:
        raise NoteError(f"{what}: key id {id_hex!r} must be 8 hex digits")
    try:
        kid = bytes.fromhex(id_hex)
    except ValueError:
        raise NoteError(f"{what}: key id {id_hex!r} is not hex") from None
    key = _b64decode(key64, f"{what} key")
    if len(key) != 33 or key[0] != ALG_ED25519:
        raise NoteError(f"{what}: only Ed25519 keys (type 0x01, 32 bytes) are supported")
    return name, kid, key[1:]


class Verifier:
    """A trusted public key: name, key id and Ed25519 public key."""

    __slots__ = ("_key", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        if len(public_key) != 32:
            raise NoteError(f"Ed25519 public key is {len(public_key)} bytes, not 32")
        self.name = name
        self.public_key = bytes(public_key)
        self.key_id = key_id(name, self.public_key)
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``name+hex(keyid)+base64(0x01||pubkey)``, checking the key id."""
        # The base64 key may itself contain '+': split at the first two only, as Go's parser does.
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must look like <name>+<hex key id>+<base64 key>")
        name, kid, public = _parse_key(parts, "verifier key")
        verifier = cls(name, public)
        if verifier.key_id != kid:
            raise NoteError(
                f"verifier key: key id {kid.hex()} does not match its key ({verifier.key_id.hex()})"
            )
        return verifier

    @property
    def vkey(self) -> str:
        """Return the key in the C2SP verifier key format."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and (self.name, self.public_key) == (other.name, other.public_key)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))


class Signer:
    """A signing key: name and Ed25519 private key."""

    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.verifier = Verifier(name, private_key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hex(keyid)+base64(0x01||seed)``, checking the key id."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key must look like PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
        name, kid, seed = _parse_key(parts[2:], "signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != kid:
            raise NoteError(f"signer key: key id {kid.hex()} does not match the key ({signer.key_id.hex()})")
        return signer

    def to_skey(self) -> str:
        """Return the key in the C2SP/Go sumdb private key format; keep it secret."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self._key.private_bytes_raw()).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    @property
    def key_id(self) -> bytes:
        """Return the four-byte key id."""
        return self.verifier.key_id

    @property
    def vkey(self) -> str:
        """Return the matching verifier key string."""
        return self.verifier.vkey

    def sign(self, message: bytes) -> bytes:
        """Return the raw Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()!r})"


def _check_text(text: str, what: str) -> None:
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"{what} contains control character U+{ord(ch):04X}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8 (lone surrogate)") from None


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Sign ``text`` (ending in a newline) with every signer and return the note."""
    signers = list(signers)
    if not signers:
        raise NoteError("a note needs at least one signer")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(text, "note text")
    message = text.encode("utf-8")
    lines = [
        f"{_SIG_PREFIX}{s.name} {base64.b64encode(s.key_id + s.sign(message)).decode()}\n" for s in signers
    ]
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the trusted keys that signed it."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    _check_text(note, "note")
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        other = known.setdefault((verifier.name, verifier.key_id), verifier)
        if other != verifier:
            raise NoteError(f"two trusted keys share name {verifier.name} and key id {verifier.key_id.hex()}")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note signature block is empty or does not end with a newline")
    message = text.encode("utf-8")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES} are accepted")
    verified: list[str] = []
    unknown: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for number, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and a space")
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not encoded:
            raise NoteError(f"signature line {number} is not '<key name> <base64 signature>'")
        raw = _b64decode(encoded, f"signature line {number}")
        if len(raw) < 5:
            raise NoteError(f"signature line {number} is too short to hold a key id and a signature")
        kid, signature = raw[:4], raw[4:]
        trusted = known.get((name, kid))
        if trusted is None:
            unknown.append(f"{name}+{kid.hex()}")
            continue
        if (name, kid) in seen:
            continue
        seen.add((name, kid))
        if not trusted.verify(message, signature):
            raise NoteError(f"signature by trusted key {name}+{kid.hex()} does not verify")
        verified.append(name)
    if not verified:
        found = f"; it is signed only by unknown keys: {', '.join(unknown)}" if unknown else ""
        raise NoteError(f"note has no signature by a trusted key{found}")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be a non-empty single line")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise NoteError(f"checkpoint size must be a non-negative integer, not {self.size!r}")
        if len(self.root) != 32:
            raise NoteError(f"checkpoint root is {len(self.root)} bytes, not 32")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("checkpoint extension lines must be non-empty single lines")

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the note text, final newline included)."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs origin, size and root lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin line is empty")
        if not (size_text.isascii() and size_text.isdigit()) or (size_text != "0" and size_text[0] == "0"):
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal number without leading zeros")
        root = _b64decode(root_text, "checkpoint root")
        if len(root) != 32 or base64.b64encode(root).decode() != root_text:
            raise NoteError("checkpoint root must be the base64 of 32 bytes")
        if any(not line for line in extensions):
            raise NoteError("checkpoint extension lines must not be empty")
        return cls(origin, int(size_text), root, tuple(extensions))

    def body(self) -> str:
        """Return the note text of this checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"


def sign_checkpoint(checkpoint: Checkpoint, signers: Iterable[Signer]) -> str:
    """Return the checkpoint as a note signed by every signer."""
    return sign_note(checkpoint.body(), signers)


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, list[str]]:
    """Verify a checkpoint note; return the checkpoint and the trusted key names that signed it."""
    text, names = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint, names
