"""Decoding: the conformance vectors, the JSON shape, other schemes and reported issues."""

from __future__ import annotations

import json

import pytest

from qr import banks, decode
from qr.banks import Bank
from qr.crc import crc_hex
from tests.qr.vectors import (
    ACB_DYNAMIC,
    LENIENT_WALLET,
    MOMO_TEMPLATE,
    MOMO_VIA_BVBANK,
    NAPAS_DYNAMIC,
    NAPAS_STATIC_CARD,
    PAYNOW,
    PROMPTPAY,
    QRIS,
    UNKNOWN_SCHEME,
    VNPAY,
)


def signed(body: str) -> str:
    body += "6304"
    return body + crc_hex(body)


def vietqr(
    *extra: str,
    initiation: str = "12",
    beneficiary: str = "0006970436" + "0110" + "0123456789",
    service: str = "QRIBFTTA",
    raw38: str | None = None,
) -> str:
    """Return a signed VietQR payload (Vietcombank, account 0123456789) with ``extra`` elements."""
    if raw38 is None:
        raw38 = f"0010A00000072701{len(beneficiary):02d}{beneficiary}"
        if service:
            raw38 += f"02{len(service):02d}{service}"
    return signed(f"0002010102{initiation}38{len(raw38):02d}{raw38}" + "".join(extra))


def codes(payload: str) -> list[tuple[str, str | None]]:
    return [(issue.code, issue.tag) for issue in decode(payload).issues]


def test_napas_dynamic_to_account() -> None:
    payload = decode(NAPAS_DYNAMIC)
    assert payload.scheme == "vietqr"
    assert payload.initiation == "dynamic"
    assert (payload.bin, payload.account, payload.service) == ("970403", "0011012345678", "QRIBFTTA")
    assert payload.amount == 180000
    assert payload.additional.bill_number == "NPS6869"
    assert payload.additional.purpose == "thanh toan don hang"
    assert payload.crc == "2E2E"
    assert payload.issues == ()


def test_napas_static_to_card() -> None:
    payload = decode(NAPAS_STATIC_CARD)
    assert payload.initiation == "static"
    assert (payload.bin, payload.account, payload.service) == ("970403", "9704031101234567", "QRIBFTTC")
    assert payload.amount is None
    assert payload.issues == ()


def test_acb_dynamic() -> None:
    payload = decode(ACB_DYNAMIC)
    assert (payload.bin, payload.account, payload.amount) == ("970416", "257678859", 1000)
    assert payload.additional.purpose == "Chuyen tien"
    assert payload.bank is not None
    assert payload.bank.code == "ACB"


def test_to_dict_is_exactly_the_documented_shape() -> None:
    assert decode(NAPAS_DYNAMIC).to_dict() == {
        "valid": True,
        "scheme": "vietqr",
        "initiation": "dynamic",
        "bin": "970403",
        "bank": {"code": "STB", "name": "Sacombank"},
        "account": "0011012345678",
        "service": "QRIBFTTA",
        "amount": 180000,
        "currency": "704",
        "country": "VN",
        "mcc": None,
        "merchant_name": None,
        "merchant_city": None,
        "additional": {
            "bill_number": "NPS6869",
            "purpose": "thanh toan don hang",
            "reference": None,
            "store": None,
            "terminal": None,
            "mobile": None,
            "customer": None,
            "loyalty": None,
        },
        "crc": "2E2E",
        "tags": [
            {"id": "00", "value": "01"},
            {"id": "01", "value": "12"},
            {"id": "38", "value": "0010A00000072701270006970403011300110123456780208QRIBFTTA"},
            {"id": "53", "value": "704"},
            {"id": "54", "value": "180000"},
            {"id": "58", "value": "VN"},
            {"id": "62", "value": "0107NPS68690819thanh toan don hang"},
            {"id": "63", "value": "2E2E"},
        ],
        "issues": [],
    }


def test_to_dict_key_order_and_json() -> None:
    shape = decode(MOMO_VIA_BVBANK).to_dict()
    assert list(shape) == [
        "valid", "scheme", "initiation", "bin", "bank", "account", "service", "amount", "currency",
        "country", "mcc", "merchant_name", "merchant_city", "additional", "crc", "tags", "issues",
    ]  # fmt: skip
    assert list(shape["additional"]) == [
        "bill_number", "purpose", "reference", "store", "terminal", "mobile", "customer", "loyalty",
    ]  # fmt: skip
    assert json.loads(json.dumps(shape)) == shape
    assert shape["issues"] == [
        {
            "code": "unreserved_primitive",
            "tag": "80",
            "message": "unreserved id 80 holds '046', not a template",
        }
    ]


@pytest.mark.parametrize(
    "payload",
    [
        NAPAS_DYNAMIC,
        NAPAS_STATIC_CARD,
        ACB_DYNAMIC,
        MOMO_VIA_BVBANK,
        PROMPTPAY,
        PAYNOW,
        QRIS,
        VNPAY,
        LENIENT_WALLET,
    ],
)
def test_decode_then_encode_reproduces_the_input(payload: str) -> None:
    decoded = decode(payload)
    assert decoded.encode() == payload
    assert [tag for tag, _, _ in decoded.tags] == list(decoded.fields)


def test_unknown_tags_are_kept_in_order() -> None:
    payload = vietqr("5303704", "5802VN", "7003abc", "6506xyzxyz", "9102zz", "0504visa")
    decoded = decode(payload)
    assert [t["id"] for t in decoded.to_dict()["tags"]] == [
        "00", "01", "38", "53", "58", "70", "65", "91", "05", "63",
    ]  # fmt: skip
    assert decoded.encode() == payload


def test_offsets_of_tags() -> None:
    tags = decode(ACB_DYNAMIC).tags
    assert tags[0] == ("00", "01", 0)
    assert tags[-1] == ("63", "BBB8", 109)


def test_lowercase_crc_is_accepted_and_reported() -> None:
    lower = NAPAS_DYNAMIC[:-4] + "2e2e"
    decoded = decode(lower)
    assert decoded.crc == "2E2E"
    assert decoded.encode() == lower
    assert ("crc_lowercase", "63") in codes(lower)


def test_lengths_count_characters_in_the_language_template() -> None:
    city = "Đà Nẵng"
    payload = vietqr("5303704", "5802VN", "6007Da Nang", "6417" + "0002vi" + f"0207{city}")
    decoded = decode(payload)
    assert decoded.language == "vi"
    assert decoded.city_alt == city
    assert decoded.merchant_city == "Da Nang"
    assert decoded.issues == ()
    assert len(city.encode()) > len(city)


def test_dotted_get_and_merchant_accounts() -> None:
    decoded = decode(QRIS)
    assert decoded.get("51.00") == "ID.CO.QRIS.WWW"
    assert decoded.get("59") == "NGUYEN VAN A"
    assert decoded.get("62.01") is None
    assert decoded.get("99") is None
    accounts = decoded.merchant_accounts
    assert [(a.tag, a.guid, a.scheme) for a in accounts] == [
        ("26", "ID.CO.EXAMPLE.WWW", None),
        ("51", "ID.CO.QRIS.WWW", "qris"),
    ]
    assert accounts[1].fields == {"00": "ID.CO.QRIS.WWW", "02": "ID1020000000001", "03": "UMI"}


@pytest.mark.parametrize(
    ("payload", "scheme", "guid_tag", "guid"),
    [
        (PROMPTPAY, "promptpay", "29", "A000000677010111"),
        (PAYNOW, "paynow", "26", "SG.PAYNOW"),
        (QRIS, "qris", "51", "ID.CO.QRIS.WWW"),
        (VNPAY, "vnpay", "26", "A000000775"),
        (MOMO_TEMPLATE, "momo", "80", "VN.MOMO.EXAMPLE"),
        (UNKNOWN_SCHEME, "emvco", "30", "XX.EXAMPLE.PAY"),
    ],
)
def test_other_schemes(payload: str, scheme: str, guid_tag: str, guid: str) -> None:
    decoded = decode(payload)
    assert decoded.scheme == scheme
    assert decoded.templates[guid_tag]["00"] == guid
    shape = decoded.to_dict()
    assert shape["scheme"] == scheme
    assert (shape["bin"], shape["bank"], shape["account"], shape["service"]) == (None, None, None, None)


def test_paynow_fields() -> None:
    decoded = decode(PAYNOW)
    assert (decoded.currency, decoded.country, decoded.amount) == ("702", "SG", 10)
    assert decoded.merchant_name == "NGUYEN VAN A"
    assert codes(PAYNOW) == [("amount_fraction", "54")]


def test_momo_receive_code_is_vietqr_through_bvbank() -> None:
    decoded = decode(MOMO_VIA_BVBANK)
    assert decoded.scheme == "vietqr"
    assert decoded.bank is not None
    assert decoded.bank.code == "BVB"
    assert decoded.account == "99MM24011M34875080"
    assert decoded.additional.reference == "MOMOW2W34875080"
    assert decoded.fields["80"] == "046"


def test_lenient_wallet_code_is_accepted_with_issues() -> None:
    assert codes(LENIENT_WALLET) == [
        ("non_ascii", "08"),
        ("invalid_initiation", "01"),
        ("missing_field", "53"),
        ("missing_field", "58"),
    ]
    assert decode(LENIENT_WALLET).scheme == "emvco"


# One case per issue code; each payload is otherwise clean.
ISSUES = [
    ("payload_too_long", None, vietqr("5303704", "5802VN", *[f"{n}99" + "x" * 99 for n in range(65, 70)])),
    ("non_ascii", "59", vietqr("5303704", "5802VN", "5909Cô Ba Rau")),
    ("non_ascii", "62.08", vietqr("5303704", "5802VN", "62100806Trả nợ")),
    ("empty_value", "61", vietqr("5303704", "5802VN", "6100")),
    ("missing_field", "58", vietqr("5303704")),
    ("missing_field", "53", vietqr("5802VN")),
    (
        "missing_field",
        "01",
        signed("00020138540010A00000072701240006970436011001234567890208QRIBFTTA53037045802VN"),
    ),
    ("missing_field", "38.02", vietqr("5303704", "5802VN", service="")),
    ("missing_field", "38.01", vietqr("5303704", "5802VN", raw38="0010A000000727" + "0206QRPUSH")),
    ("missing_field", "38.01.00", vietqr("5303704", "5802VN", beneficiary="01100123456789")),
    ("missing_field", "38.01.01", vietqr("5303704", "5802VN", beneficiary="0006970436")),
    ("missing_field", "64.00", vietqr("5303704", "5802VN", "64090105Cô Ba")),
    ("too_long", "59", vietqr("5303704", "5802VN", "5926" + "NGUYEN VAN A BAN RAU CHO X")),
    ("too_long", "60", vietqr("5303704", "5802VN", "6016" + "THANH PHO HO CHI")),
    ("too_long", "61", vietqr("5303704", "5802VN", "6111" + "12345678901")),
    ("too_long", "62.05", vietqr("5303704", "5802VN", "6230" + "0526" + "R" * 26)),
    ("too_long", "64.01", vietqr("5303704", "5802VN", "6436" + "0002vi" + "0126" + "ư" * 26)),
    ("too_long", "54", vietqr("5303704", "54141234567890.000", "5802VN")),
    ("invalid_initiation", "01", vietqr("5303704", "5802VN", initiation="13")),
    ("invalid_amount", "54", vietqr("5303704", "54031e3", "5802VN")),
    ("invalid_amount", "54", vietqr("5303704", "5406100.50", "5802VN")),
    ("invalid_amount", "54", vietqr("5303704", "54010", "5802VN")),
    ("amount_fraction", "54", vietqr("5303704", "54071000.00", "5802VN")),
    ("amount_on_static", "54", vietqr("5303704", "54041000", "5802VN", initiation="11")),
    ("invalid_currency", "53", vietqr("5303840", "5802VN")),
    ("invalid_currency", "53", vietqr("5303VND", "5802VN")),
    ("invalid_country", "58", vietqr("5303704", "5802TH")),
    ("invalid_country", "58", vietqr("5303704", "5802vn")),
    ("invalid_mcc", "52", vietqr("5203541", "5303704", "5802VN")),
    ("missing_guid", "27", vietqr("27060102ab", "5303704", "5802VN")),
    ("unreserved_primitive", "80", vietqr("5303704", "5802VN", "8003046")),
    ("invalid_bin", "38.01.00", vietqr("5303704", "5802VN", beneficiary="000597043" + "01100123456789")),
    ("unknown_bin", "38.01.00", vietqr("5303704", "5802VN", beneficiary="0006123456" + "01100123456789")),
    ("unknown_service", "38.02", vietqr("5303704", "5802VN", service="QRSEND")),
    ("invalid_account", "38.01.01", vietqr("5303704", "5802VN", service="QRIBFTTC")),
    (
        "invalid_account",
        "38.01.01",
        vietqr("5303704", "5802VN", beneficiary="0006970436" + "0120" + "1" * 20),
    ),
    ("crc_lowercase", "63", NAPAS_STATIC_CARD[:-4] + "4f52"),
]


@pytest.mark.parametrize(("code", "tag", "payload"), ISSUES, ids=[f"{c}-{t}" for c, t, _ in ISSUES])
def test_each_issue_code(code: str, tag: str | None, payload: str) -> None:
    decoded = decode(payload)
    found = [(issue.code, issue.tag) for issue in decoded.issues]
    assert (code, tag) in found
    assert all(issue.message for issue in decoded.issues)
    assert decoded.to_dict()["valid"] is True


def test_bank_not_receiving(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = Bank("970436", "X", "Closed Bank", "Ngân hàng X", None, False, False, "bank")
    monkeypatch.setattr(banks, "by_bin", lambda bin_: closed)
    assert ("bank_not_receiving", "38.01.00") in codes(vietqr("5303704", "5802VN"))


def test_every_issue_code_is_covered() -> None:
    import qr.checks

    documented = {
        line.split("``")[1]
        for line in (qr.checks.__doc__ or "").splitlines()
        if line.startswith("``") and line.split("``")[1] != "code"
    }
    covered = {code for code, _, _ in ISSUES} | {"bank_not_receiving"}
    assert documented == covered


def test_issues_do_not_change_the_fields() -> None:
    decoded = decode(
        vietqr("5303704", "54041000", "5802VN", "5926" + "NGUYEN VAN A BAN RAU CHO X", initiation="11")
    )
    assert decoded.amount == 1000
    assert decoded.initiation == "static"
    assert decoded.merchant_name == "NGUYEN VAN A BAN RAU CHO X"
    assert {issue.code for issue in decoded.issues} == {"amount_on_static", "too_long"}


def test_payload_equality_and_repr() -> None:
    assert decode(ACB_DYNAMIC) == decode(ACB_DYNAMIC)
    assert hash(decode(ACB_DYNAMIC)) == hash(ACB_DYNAMIC)
    assert decode(ACB_DYNAMIC) != decode(NAPAS_DYNAMIC)
    assert "vietqr" in repr(decode(ACB_DYNAMIC))
