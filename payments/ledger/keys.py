"""Where the ledger's signing key and trusted verifier keys come from.

* The signing key: ``CHOPAY_LEDGER_SIGNING_KEY`` (a C2SP private key string) or the file
  ``$CHOPAY_KEYS_DIR/ledger-signing.key``.
* Trusted verifier keys: every line of ``$CHOPAY_KEYS_DIR/ledger-verifier.vkey`` and of
  ``CHOPAY_LEDGER_TRUSTED_KEYS`` (whitespace-separated vkeys), plus the signing key's own.

Rotation: install a new signing key and keep the old verifier key in the vkey file; the new
key signs from then on and checkpoints signed by the old one still verify.
"""

from __future__ import annotations

import os

from chopay.config import Settings
from payments.ledger.note import Signer, Verifier

SIGNING_KEY_FILE = "ledger-signing.key"
VERIFIER_KEYS_FILE = "ledger-verifier.vkey"


def load_signer(settings: Settings) -> Signer | None:
    """Return the configured signing key, or None when there is none."""
    text = settings.ledger_signing_key
    path = settings.keys_dir / SIGNING_KEY_FILE
    if not text and path.exists():
        text = path.read_text()
    return Signer.from_skey(text.strip()) if text else None


def trusted_verifiers(settings: Settings) -> list[Verifier]:
    """Return every trusted verifier key, the current signer's first, without duplicates."""
    vkeys: list[str] = []
    signer = load_signer(settings)
    if signer is not None:
        vkeys.append(signer.vkey)
    path = settings.keys_dir / VERIFIER_KEYS_FILE
    if path.exists():
        vkeys.extend(line.strip() for line in path.read_text().splitlines() if line.strip())
    vkeys.extend(settings.ledger_trusted_keys.split())
    seen: dict[str, Verifier] = {}
    for vkey in vkeys:
        if vkey not in seen:
            seen[vkey] = Verifier.from_vkey(vkey)
    return list(seen.values())


def rotate(settings: Settings) -> Signer:
    """Install a new signing key file, keeping the old verifier key trusted and the old key retired."""
    keys_dir = settings.keys_dir
    old = load_signer(settings)
    path = keys_dir / SIGNING_KEY_FILE
    vkeys = keys_dir / VERIFIER_KEYS_FILE
    trusted = [v.vkey for v in trusted_verifiers(settings)]
    new = Signer.generate(settings.ledger_origin)
    if old is not None and path.exists():
        path.rename(keys_dir / f"{SIGNING_KEY_FILE}.{old.vkey.split('+')[1]}.retired")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new.to_skey() + "\n")
    vkeys.write_text("\n".join([new.vkey, *trusted]) + "\n")
    return new
