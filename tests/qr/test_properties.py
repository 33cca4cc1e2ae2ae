"""Property tests: build-then-decode round-trips, and decode never fails with anything but QRError."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qr import QRError, all_banks, build_emvco, build_vietqr, decode
from qr.builder import MAX_AMOUNT
from qr.crc import crc_hex
from qr.schemes import STRICT_TEMPLATE_IDS
from qr.text import to_qr_ascii
from tests.qr.vectors import ACB_DYNAMIC, MOMO_VIA_BVBANK, NAPAS_DYNAMIC, NAPAS_STATIC_CARD, PAYNOW, QRIS

BINS = sorted({b.bin for b in all_banks() if b.bin and b.receives_transfers and b.account_prefix is None})
ALNUM = string.ascii_letters + string.digits
PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))
VI_LETTERS = "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"
LABELS = ("bill_number", "reference", "store", "terminal", "mobile", "customer", "loyalty")
VALID = [NAPAS_DYNAMIC, NAPAS_STATIC_CARD, ACB_DYNAMIC, MOMO_VIA_BVBANK, PAYNOW, QRIS]

labels = st.text(alphabet=PRINTABLE, min_size=1, max_size=25)
purposes = (
    st.lists(st.text(alphabet=ALNUM + "._-", min_size=1, max_size=8), min_size=1, max_size=4)
    .map(" ".join)
    .filter(lambda text: len(text) <= 25)
)


def vietnamese(limit: int) -> st.SearchStrategy[str]:
    word = st.text(alphabet=VI_LETTERS + VI_LETTERS.upper(), min_size=1, max_size=7)
    return st.lists(word, min_size=1, max_size=4).map(" ".join).filter(lambda text: len(text) <= limit)


@st.composite
def vietqr_inputs(draw: st.DrawFn) -> dict[str, Any]:
    service = draw(st.sampled_from(["QRIBFTTA", "QRIBFTTC", "QRPUSH", "QRCASH"]))
    if service == "QRIBFTTC":
        account = draw(st.text(alphabet=string.digits, min_size=16, max_size=19))
    else:
        account = draw(st.text(alphabet=ALNUM, min_size=1, max_size=19))
    amount = draw(st.none() | st.integers(min_value=1, max_value=MAX_AMOUNT))
    options: dict[str, Any] = {
        "bin": draw(st.sampled_from(BINS)),
        "account": account,
        "service": service,
        "amount": amount,
        "initiation": draw(st.sampled_from([None, "dynamic"] if amount else [None, "dynamic", "static"])),
        "purpose": draw(st.none() | purposes),
        "merchant_name": draw(st.none() | st.text(alphabet=ALNUM + " ", max_size=25).filter(str.strip)),
        "merchant_city": draw(st.none() | st.text(alphabet=ALNUM + " ", max_size=15).filter(str.strip)),
        "name_vi": draw(st.none() | vietnamese(25)),
        "city_vi": draw(st.none() | vietnamese(15)),
        "mcc": draw(st.none() | st.text(alphabet=string.digits, min_size=4, max_size=4)),
        "postal_code": draw(st.none() | st.text(alphabet=ALNUM, min_size=1, max_size=10)),
    }
    for name in draw(st.lists(st.sampled_from(LABELS), unique=True, max_size=4)):
        options[name] = draw(labels)
    extra = [options.get(name) for name in (*LABELS, "purpose")]
    assume(sum(len(value) + 4 for value in extra if value is not None) <= 99)
    return options


@settings(max_examples=300)
@given(vietqr_inputs())
def test_build_then_decode_round_trips(options: dict[str, Any]) -> None:
    payload = build_vietqr(**options)
    decoded = decode(payload)
    assert decoded.issues == ()
    assert decoded.encode() == payload
    assert decoded.scheme == "vietqr"
    assert (decoded.bin, decoded.account, decoded.service) == (
        options["bin"],
        options["account"],
        options["service"],
    )
    assert decoded.amount == options["amount"]
    expected = options["initiation"] or ("dynamic" if options["amount"] else "static")
    assert decoded.initiation == expected
    assert decoded.additional.purpose == options["purpose"]
    for name in LABELS:
        assert getattr(decoded.additional, name) == options.get(name)
    assert decoded.name_alt == options["name_vi"]
    assert decoded.city_alt == options["city_vi"]
    name = options["merchant_name"] if options["merchant_name"] is not None else options["name_vi"]
    city = options["merchant_city"] if options["merchant_city"] is not None else options["city_vi"]
    assert decoded.merchant_name == (None if name is None else to_qr_ascii(name))
    assert decoded.merchant_city == (None if city is None else to_qr_ascii(city))
    assert (decoded.mcc, decoded.postal_code) == (options["mcc"], options["postal_code"])
    assert payload[:-4].isascii() or options["name_vi"] or options["city_vi"]


def _decode_or_qrerror(text: str) -> None:
    try:
        decoded = decode(text)
    except QRError:
        return
    assert decoded.encode() == text
    decoded.to_dict()


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_raises_only_qrerror(text: str) -> None:
    _decode_or_qrerror(text)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=60))
def test_text_with_lone_surrogates_raises_only_qrerror(text: str) -> None:
    _decode_or_qrerror(text)
    _decode_or_qrerror(NAPAS_DYNAMIC[:20] + text + NAPAS_DYNAMIC[20:])


@settings(max_examples=300)
@given(st.text(alphabet="0123456789ABCDEF", max_size=120))
def test_digit_soup_raises_only_qrerror(text: str) -> None:
    _decode_or_qrerror("000201" + text)


def _mutate(draw: st.DrawFn, text: str) -> str:
    operation = draw(st.sampled_from(["truncate", "delete", "insert", "replace", "duplicate"]))
    at = draw(st.integers(min_value=0, max_value=len(text)))
    if operation == "truncate":
        return text[:at]
    if operation == "delete":
        return text[:at] + text[at + draw(st.integers(min_value=1, max_value=6)) :]
    if operation == "insert":
        return text[:at] + draw(st.text(min_size=1, max_size=6)) + text[at:]
    if operation == "replace":
        return text[:at] + draw(st.text(min_size=1, max_size=1)) + text[at + 1 :]
    end = draw(st.integers(min_value=at, max_value=len(text)))
    return text[:at] + text[at:end] * 2 + text[end:]


@st.composite
def mutations(draw: st.DrawFn) -> str:
    return _mutate(draw, draw(st.sampled_from(VALID)))


@st.composite
def resigned_mutations(draw: st.DrawFn) -> str:
    """Mutate the body and sign it again, so the damage reaches the parser past the CRC check."""
    body = _mutate(draw, draw(st.sampled_from(VALID))[:-8]) + "6304"
    return body + crc_hex(body)


@settings(max_examples=500)
@given(mutations())
def test_mutated_payloads_raise_only_qrerror(text: str) -> None:
    _decode_or_qrerror(text)


@settings(max_examples=500)
@given(resigned_mutations())
def test_resigned_mutations_raise_only_qrerror(text: str) -> None:
    _decode_or_qrerror(text)


TOP_IDS = [f"{n:02d}" for n in range(1, 100) if n != 63]


@st.composite
def emvco_trees(draw: st.DrawFn) -> list[tuple[str, Any]]:
    elements: list[tuple[str, Any]] = [("00", "01")]
    for tag in draw(st.lists(st.sampled_from(TOP_IDS), unique=True, max_size=10)):
        if tag in STRICT_TEMPLATE_IDS or (tag >= "80" and draw(st.booleans())):
            subs = draw(st.lists(st.sampled_from([f"{n:02d}" for n in range(100)]), unique=True, max_size=4))
            elements.append((tag, [(sub, draw(st.text(max_size=12))) for sub in subs]))
        else:
            elements.append((tag, draw(st.text(max_size=30))))
    return elements


@settings(max_examples=300)
@given(emvco_trees())
def test_any_well_formed_tree_round_trips_in_order(elements: list[tuple[str, Any]]) -> None:
    payload = build_emvco(elements)
    decoded = decode(payload)
    assert decoded.encode() == payload
    assert list(decoded.fields) == [tag for tag, _ in elements] + ["63"]
    for tag, value in elements:
        if not isinstance(value, str):
            assert decoded.templates[tag] == dict(value)
