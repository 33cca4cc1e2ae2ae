"""The bank directory: coverage, renamed banks, and lookups that ignore case and diacritics."""

from __future__ import annotations

import datetime as dt
import json
import re
from importlib import resources

import pytest

from qr import all_banks, bank_by_bin, directory_info, find_bank, search_banks


def test_covers_the_state_bank_list() -> None:
    entries = all_banks()
    assert len(entries) >= 60
    bins = [bank.bin for bank in entries if bank.bin is not None and bank.account_prefix is None]
    assert len(bins) == len(set(bins))
    assert len({bank.code for bank in entries}) == len(entries)


def test_every_entry_is_well_formed() -> None:
    for bank in all_banks():
        assert bank.bin is None or re.fullmatch(r"\d{6}", bank.bin), bank
        assert re.fullmatch(r"[A-Z0-9]+", bank.code), bank
        assert bank.short_name, bank
        assert bank.name, bank
        assert bank.swift is None or re.fullmatch(r"[A-Z0-9]{8}([A-Z0-9]{3})?", bank.swift), bank
        assert bank.kind in {
            "bank",
            "digital_bank",
            "foreign_branch",
            "policy_bank",
            "e_wallet",
            "finance_company",
        }
        assert bank.receives_transfers or bank.bin is None, bank


def test_file_header_names_source_and_date() -> None:
    raw = json.loads(resources.files("qr").joinpath("banks.json").read_text(encoding="utf-8"))
    assert "State Bank of Vietnam" in raw["source"]
    dt.date.fromisoformat(raw["as_of"])
    info = directory_info()
    assert info["as_of"] == raw["as_of"]
    assert info["count"] == len(raw["banks"])


@pytest.mark.parametrize(
    ("bin_", "code", "short_name", "old_name"),
    [
        ("970414", "MBV", "MBV", "OceanBank"),
        ("970406", "VIKKI", "Vikki Bank", "DongA Bank"),
        ("970449", "LPB", "LPBank", "LienVietPostBank"),
    ],
)
def test_renamed_banks_keep_their_old_names(bin_: str, code: str, short_name: str, old_name: str) -> None:
    bank = bank_by_bin(bin_)
    assert bank is not None
    assert (bank.code, bank.short_name) == (code, short_name)
    assert old_name in bank.aliases
    assert find_bank(old_name) is bank
    assert find_bank(old_name.upper()) is bank


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("970436", "VCB"),
        ("vcb", "VCB"),
        ("Vietcombank", "VCB"),
        ("NGAN HANG TMCP NGOAI THUONG VIET NAM", "VCB"),
        ("ngân hàng tmcp ngoại thương việt nam", "VCB"),
        ("Ngân hàng TMCP Đông Á", "VIKKI"),
        ("dong a bank", "VIKKI"),
        ("ocean bank", "MBV"),
        ("Lien Viet Post Bank", "LPB"),
        ("ICB", "CTG"),
        ("  Sacombank ", "STB"),
    ],
)
def test_find_by_bin_code_or_name(query: str, code: str) -> None:
    bank = find_bank(query)
    assert bank is not None
    assert bank.code == code


def test_find_unknown() -> None:
    assert find_bank("no such bank") is None
    assert bank_by_bin("123456") is None


def test_search_matches_parts_and_puts_the_exact_match_first() -> None:
    results = search_banks("kookmin")
    assert {bank.code for bank in results} == {"KBHN", "KBHCM"}
    assert search_banks("Vikki")[0].code == "VIKKI"
    assert search_banks("dong a")[0].code == "VIKKI"
    assert search_banks("") == list(all_banks())
    assert search_banks("zzzz") == []


def test_wallets_are_reached_through_their_bank() -> None:
    momo = find_bank("MoMo")
    assert momo is not None
    assert (momo.bin, momo.account_prefix) == ("970454", "99MM")
    owner = bank_by_bin("970454")
    assert owner is not None
    assert owner.code == "BVB"


def test_to_dict() -> None:
    bank = bank_by_bin("970436")
    assert bank is not None
    assert bank.to_dict()["swift"] == "BFTVVNVX"
    assert set(bank.to_dict()) == {
        "bin", "code", "short_name", "name", "swift", "receives_transfers", "account_lookup", "kind",
        "aliases", "account_prefix",
    }  # fmt: skip
