"""Vietnamese formats of money and time, and the translation catalogues the pages read."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from chopay.web.formats import NBSP, number, vnd, vntime

REPO = Path(__file__).resolve().parents[2]
CATALOGUES = REPO / "chopay" / "translations"


def test_money_reads_the_vietnamese_way():
    assert vnd(50000) == f"50.000{NBSP}₫"
    assert vnd(0) == f"0{NBSP}₫"
    assert vnd(9_999_999_999_999) == f"9.999.999.999.999{NBSP}₫"
    assert vnd(-1500) == f"-1.500{NBSP}₫"
    assert vnd(None) == "—"
    assert number(1234567) == "1.234.567"


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_money_text_gives_back_its_amount(amount):
    text = vnd(amount)
    digits, symbol = text.split(NBSP)
    assert symbol == "₫"
    assert int(digits.replace(".", "")) == amount
    assert all(len(group) == 3 for group in digits.lstrip("-").split(".")[1:])


@pytest.mark.parametrize("amount", [1.5, "50000", True])
def test_money_is_integer_dong_only(amount):
    with pytest.raises(TypeError):
        vnd(amount)


def test_times_are_shown_in_vietnam():
    moment = dt.datetime(2026, 12, 1, 17, 30, 5, tzinfo=dt.UTC)
    assert vntime(moment) == "02/12/2026 00:30"
    assert vntime(moment, seconds=True) == "02/12/2026 00:30:05"
    with pytest.raises(ValueError, match="naive"):
        vntime(dt.datetime(2026, 12, 1, 17, 30))  # noqa: DTZ001


def _extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            str(REPO / "babel.cfg"),
            "-k",
            "_l",
            "--no-location",
            "-o",
            str(pot),
            "chopay",
            "payments",
            "disbursement",
            "merchants",
        ],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return {m.id for m in read_po(BytesIO(pot.read_bytes())) if m.id}


def test_every_page_string_has_a_vietnamese_translation(tmp_path):
    catalogue = read_po(BytesIO((CATALOGUES / "vi/LC_MESSAGES/messages.po").read_bytes()))
    translated = {m.id for m in catalogue if m.id and m.string}
    missing = sorted(_extracted(tmp_path) - translated)
    assert not missing, f"untranslated: {missing}; run `make translations` and fill in messages.po"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_compiled_catalogues_match_their_sources(lang):
    source = read_po(BytesIO((CATALOGUES / f"{lang}/LC_MESSAGES/messages.po").read_bytes()))
    compiled = read_mo(BytesIO((CATALOGUES / f"{lang}/LC_MESSAGES/messages.mo").read_bytes()))
    assert {m.id: m.string for m in source if m.id and m.string} == {
        m.id: m.string for m in compiled if m.id and m.string
    }, "run `make translations` to compile messages.mo"
