"""Building VietQR payloads: the conformance vectors, the initiation rule, every validation."""

from __future__ import annotations

from typing import Any

import pytest

from qr import BuildError, build_emvco, build_vietqr, decode
from qr.builder import MAX_AMOUNT
from tests.qr.vectors import ACB_DYNAMIC, NAPAS_DYNAMIC, NAPAS_STATIC_CARD

BASE: dict[str, Any] = {"bin": "970436", "account": "0123456789"}


def test_conformance_vectors_are_reproduced() -> None:
    assert (
        build_vietqr(
            bin="970403",
            account="0011012345678",
            amount=180000,
            bill_number="NPS6869",
            purpose="thanh toan don hang",
        )
        == NAPAS_DYNAMIC
    )
    assert build_vietqr(bin="970403", account="9704031101234567", service="QRIBFTTC") == NAPAS_STATIC_CARD
    assert build_vietqr(bin="970416", account="257678859", amount=1000, purpose="Chuyen tien") == ACB_DYNAMIC


def test_crc_is_four_uppercase_hex_digits() -> None:
    payload = build_vietqr(**BASE, amount=12345, purpose="rau cai")
    assert payload[-8:-4] == "6304"
    assert payload[-4:] == payload[-4:].upper()
    assert decode(payload).issues == ()


@pytest.mark.parametrize(
    ("options", "point"),
    [
        ({}, "11"),
        ({"amount": 5000}, "12"),
        ({"initiation": "dynamic"}, "12"),
        ({"initiation": "static"}, "11"),
        ({"amount": 5000, "initiation": "dynamic"}, "12"),
    ],
)
def test_initiation_follows_the_amount_unless_told(options: dict[str, Any], point: str) -> None:
    assert build_vietqr(**BASE, **options)[6:12] == "0102" + point


def test_a_static_payload_never_carries_an_amount() -> None:
    with pytest.raises(BuildError) as caught:
        build_vietqr(**BASE, amount=5000, initiation="static")
    assert caught.value.field == "initiation"


def test_services() -> None:
    for service in ("QRIBFTTA", "QRPUSH", "QRCASH"):
        assert decode(build_vietqr(**BASE, service=service)).service == service
    assert decode(build_vietqr(bin="970436", account="9704361234567890123", service="QRIBFTTC")).issues == ()


def test_e_wallet_accounts_are_alphanumeric() -> None:
    payload = build_vietqr(bin="970454", account="99MM24011M34875080", reference="MOMOW2W34875080")
    assert decode(payload).account == "99MM24011M34875080"


def test_every_optional_field_lands_in_its_tag() -> None:
    payload = build_vietqr(
        **BASE,
        amount=50000,
        purpose="tien rau",
        bill_number="HD001",
        reference="CP-INTENT-42",
        store="SAP 12",
        terminal="T1",
        mobile="0900000000",
        merchant_name="NGUYEN VAN A",
        merchant_city="HA NOI",
        mcc="5411",
        postal_code="100000",
    )
    decoded = decode(payload)
    assert decoded.issues == ()
    assert (decoded.mcc, decoded.merchant_name, decoded.merchant_city, decoded.postal_code) == (
        "5411",
        "NGUYEN VAN A",
        "HA NOI",
        "100000",
    )
    assert decoded.additional.to_dict() == {
        "bill_number": "HD001",
        "purpose": "tien rau",
        "reference": "CP-INTENT-42",
        "store": "SAP 12",
        "terminal": "T1",
        "mobile": "0900000000",
        "customer": None,
        "loyalty": None,
    }
    assert list(decoded.fields) == ["00", "01", "38", "52", "53", "54", "58", "59", "60", "61", "62", "63"]


def test_loyalty_and_customer_labels() -> None:
    additional = decode(build_vietqr(**BASE, loyalty="L1", customer="C1")).additional
    assert (additional.loyalty, additional.customer) == ("L1", "C1")


def test_vietnamese_name_and_city_go_to_tag_64_and_ascii_is_derived() -> None:
    decoded = decode(build_vietqr(**BASE, name_vi="Cô Ba bán rau", city_vi="Đà Nẵng"))
    assert (decoded.name_alt, decoded.city_alt, decoded.language) == ("Cô Ba bán rau", "Đà Nẵng", "vi")
    assert (decoded.merchant_name, decoded.merchant_city) == ("Co Ba ban rau", "Da Nang")
    assert decoded.issues == ()


def test_ascii_fields_are_transliterated() -> None:
    decoded = decode(
        build_vietqr(**BASE, merchant_name="Đặng Thị Hoa", merchant_city="Huế", purpose="Trả nợ #12")
    )
    assert (decoded.merchant_name, decoded.merchant_city) == ("Dang Thi Hoa", "Hue")
    assert decoded.additional.purpose == "Tra no 12"
    assert decoded.raw.isascii()


def test_language_template_is_nfc() -> None:
    decomposed = "Cô Ba".replace("ô", "o\u0302")
    assert decode(build_vietqr(**BASE, name_vi=decomposed)).name_alt == "Cô Ba"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"bin": "97043"}, "bin"),
        ({"bin": "97043a"}, "bin"),
        ({"bin": "123456"}, "bin"),
        ({"account": ""}, "account"),
        ({"account": "0123 456"}, "account"),
        ({"account": "1" * 20}, "account"),
        ({"account": "0123456789", "service": "QRIBFTTC"}, "account"),
        ({"service": "QRSEND"}, "service"),
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": MAX_AMOUNT + 1}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "1000"}, "amount"),
        ({"initiation": "sometimes"}, "initiation"),
        ({"purpose": "x" * 26}, "purpose"),
        ({"purpose": "Thanh toán tiền hàng tháng mười"}, "purpose"),
        ({"purpose": "!!!"}, "purpose"),
        ({"bill_number": "x" * 26}, "bill_number"),
        ({"bill_number": ""}, "bill_number"),
        ({"reference": "Mã 1"}, "reference"),
        ({"store": "a\tb"}, "store"),
        ({"terminal": "t" * 26}, "terminal"),
        ({"merchant_name": "x" * 26}, "merchant_name"),
        ({"merchant_name": "😀"}, "merchant_name"),
        ({"merchant_city": "Thành phố Hồ Chí Minh"}, "merchant_city"),
        ({"name_vi": "Cửa hàng tạp hoá Nguyễn Văn A"}, "name_vi"),
        ({"city_vi": "Thành phố Hồ Chí Minh"}, "city_vi"),
        ({"name_vi": "a\x00b"}, "name_vi"),
        ({"mcc": "541"}, "mcc"),
        ({"postal_code": "12345678901"}, "postal_code"),
        (
            {"bill_number": "B" * 25, "purpose": "p" * 25, "reference": "R" * 25, "store": "S" * 25},
            "additional_data",
        ),
    ],
)
def test_invalid_fields_are_named(options: dict[str, Any], field: str) -> None:
    with pytest.raises(BuildError) as caught:
        build_vietqr(**{**BASE, **options})
    assert caught.value.field == field
    assert caught.value.code == "invalid_field"
    assert field in str(caught.value)


def test_bank_that_does_not_receive_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from qr import banks

    closed = banks.Bank("970436", "X", "Closed Bank", "Ngân hàng X", None, False, False, "bank")
    monkeypatch.setattr(banks, "by_bin", lambda bin_: closed)
    with pytest.raises(BuildError, match="does not receive"):
        build_vietqr(**BASE)


def test_maximum_lengths_fit() -> None:
    payload = build_vietqr(
        bin="970436",
        account="9" * 19,
        amount=MAX_AMOUNT,
        bill_number="B" * 25,
        purpose="p" * 25,
        reference="R" * 25,
        merchant_name="N" * 25,
        merchant_city="C" * 15,
        name_vi="Ư" * 25,
        city_vi="Đ" * 15,
        mcc="5411",
        postal_code="1" * 10,
    )
    decoded = decode(payload)
    assert decoded.issues == ()
    assert decoded.amount == MAX_AMOUNT
    assert len(payload) <= 512


def test_build_emvco_nests_templates_and_signs() -> None:
    payload = build_emvco(
        [("00", "01"), ("01", "11"), ("26", [("00", "A000000775"), ("01", "X")]), ("58", "VN")]
    )
    assert payload.startswith("000201010211" + "2619" + "0010A000000775" + "0101X" + "5802VN" + "6304")
    assert decode(payload).templates["26"] == {"00": "A000000775", "01": "X"}


@pytest.mark.parametrize("elements", [[("6", "x")], [("ab", "x")], [("63", "ABCD")], [("59", "x" * 100)]])
def test_build_emvco_checks_structure(elements: list[tuple[str, str]]) -> None:
    with pytest.raises(BuildError):
        build_emvco(elements)
