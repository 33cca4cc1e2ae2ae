"""The directory of banks and e-wallets that take part in VietQR.

The data lives in ``banks.json`` next to this module; its ``source`` and ``as_of`` keys say
where it came from and when. Each entry has the NAPAS BIN (``None`` for the few State Bank
institutions outside NAPAS 247), a short code, a short name, the full Vietnamese name, the
SWIFT code where known, whether the institution receives VietQR transfers and whether NAPAS
account-name lookup works for it. Renamed banks keep their former names and codes as aliases,
so a code printed before the rename (OceanBank, DongA Bank, LienVietPostBank) still resolves.

E-wallets without a BIN of their own (MoMo, ZaloPay) are listed with the BIN of the bank that
holds their accounts and the account prefix that identifies them; :func:`by_bin` always
answers with the bank that owns the BIN.

Lookups ignore case, diacritics, spaces and punctuation: "vikki", "DongA Bank" and
"Ngân hàng TMCP Đông Á" all find BIN 970406. The file is read once, on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from qr.text import fold

__all__ = ["Bank", "all_banks", "by_bin", "directory_info", "find", "search"]


@dataclass(frozen=True, slots=True)
class Bank:
    """One institution that can appear as a VietQR beneficiary."""

    bin: str | None
    code: str
    short_name: str
    name: str
    swift: str | None
    receives_transfers: bool
    account_lookup: bool
    kind: str
    aliases: tuple[str, ...] = ()
    account_prefix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-ready values."""
        return {
            "bin": self.bin,
            "code": self.code,
            "short_name": self.short_name,
            "name": self.name,
            "swift": self.swift,
            "receives_transfers": self.receives_transfers,
            "account_lookup": self.account_lookup,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "account_prefix": self.account_prefix,
        }


@dataclass(frozen=True, slots=True)
class _Directory:
    banks: tuple[Bank, ...]
    by_bin: dict[str, Bank]
    by_key: dict[str, Bank]
    source: str
    as_of: str


@cache
def _directory() -> _Directory:
    raw = json.loads(resources.files("qr").joinpath("banks.json").read_text(encoding="utf-8"))
    banks = tuple(
        Bank(
            bin=entry["bin"],
            code=entry["code"],
            short_name=entry["short_name"],
            name=entry["name"],
            swift=entry["swift"],
            receives_transfers=entry["receives_transfers"],
            account_lookup=entry["account_lookup"],
            kind=entry["kind"],
            aliases=tuple(entry["aliases"]),
            account_prefix=entry.get("account_prefix"),
        )
        for entry in raw["banks"]
    )
    bins = {b.bin: b for b in banks if b.bin is not None and b.account_prefix is None}
    keys: dict[str, Bank] = {}
    # Codes win over names, and current names over aliases, when two entries fold alike.
    for bank in banks:
        keys.setdefault(fold(bank.code), bank)
    for bank in banks:
        keys.setdefault(fold(bank.short_name), bank)
        keys.setdefault(fold(bank.name), bank)
    for bank in banks:
        for alias in bank.aliases:
            keys.setdefault(fold(alias), bank)
    return _Directory(banks, bins, keys, raw["source"], raw["as_of"])


def all_banks() -> tuple[Bank, ...]:
    """Return every entry in the directory, in file order."""
    return _directory().banks


def by_bin(bin_: str) -> Bank | None:
    """Return the institution that owns a six-digit BIN, or ``None``."""
    return _directory().by_bin.get(bin_)


def find(query: str) -> Bank | None:
    """Return the one entry whose BIN, code, name or alias matches ``query`` exactly."""
    query = query.strip()
    found = by_bin(query)
    if found is not None:
        return found
    return _directory().by_key.get(fold(query))


def search(query: str = "") -> list[Bank]:
    """Return the entries whose BIN, code, name or alias contains ``query``; all for ``""``."""
    exact = find(query) if query.strip() else None
    key = fold(query)
    if not key:
        return list(all_banks())
    matches = [
        bank
        for bank in all_banks()
        if bank is not exact
        and (
            (bank.bin is not None and key in bank.bin)
            or any(key in fold(text) for text in (bank.code, bank.short_name, bank.name, *bank.aliases))
        )
    ]
    return [exact, *matches] if exact is not None else matches


def directory_info() -> dict[str, str | int]:
    """Return where the directory's data came from, its date and its size."""
    directory = _directory()
    return {"source": directory.source, "as_of": directory.as_of, "count": len(directory.banks)}
