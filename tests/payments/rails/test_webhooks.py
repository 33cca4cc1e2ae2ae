"""Signing and verifying bank notifications in the chopay, SePay and payOS formats."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from payos import PayOS
from payos import WebhookError as SdkWebhookError

from payments.rails import webhooks as wh
from payments.rails.webhooks import WebhookError

NOW = 1_764_600_000
SECRET = "whsec_test_0001"

secrets = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
bodies = st.binary(max_size=300)
stamps = st.integers(min_value=0, max_value=10**11)
amounts = st.integers(min_value=1, max_value=wh.MAX_AMOUNT)
words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=60)
moments = st.integers(946_684_800, 4_102_444_799).map(lambda s: dt.datetime.fromtimestamp(s, wh.VIETNAM))


def _code(exc: pytest.ExceptionInfo[WebhookError]) -> str:
    return exc.value.code


# --- chopay format ---------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"amount":50000}'
    header = wh.sign_chopay(body, SECRET, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert wh.verify_chopay(body, header, [SECRET], now=NOW) == NOW


@given(body=bodies, secret=secrets, t=stamps, skew=st.integers(-wh.TOLERANCE, wh.TOLERANCE))
def test_what_is_signed_verifies_within_the_window(body, secret, t, skew):
    header = wh.sign_chopay(body, secret, timestamp=t)
    assert wh.verify_chopay(body, header, ["other-secret", secret], now=t + skew) == t


@given(body=bodies, secret=secrets, t=stamps, index=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(body, secret, t, index, flip):
    header = wh.sign_chopay(body, secret, timestamp=t)
    tampered = bytearray(body + b"x")
    i = index % len(tampered)
    tampered[i] ^= flip
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(bytes(tampered), header, [secret], now=t)
    assert _code(exc) == "signature_invalid"


@given(body=bodies, t=stamps, late=st.integers(wh.TOLERANCE + 1, 10**6), sign=st.sampled_from([-1, 1]))
def test_outside_the_window_is_expired_either_way(body, t, late, sign):
    header = wh.sign_chopay(body, SECRET, timestamp=t)
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(body, header, [SECRET], now=t + sign * late)
    assert _code(exc) == "signature_expired"
    assert "the window is 300 s" in exc.value.message


@given(t=stamps, sigs=st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), min_size=1, max_size=4))
def test_signature_header_round_trips(t, sigs):
    header = wh.SignatureHeader(t, tuple(sigs))
    assert wh.parse_chopay_signature(str(header)) == header


@given(st.text(max_size=200))
def test_arbitrary_headers_fail_only_with_webhook_errors(text):
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(b"{}", text, [SECRET], now=NOW)
    assert exc.value.code.startswith("signature_")


def test_rotation_signs_with_both_and_the_receiver_holds_either():
    body = b"{}"
    header = wh.sign_chopay(body, "old", "new", timestamp=NOW)
    assert header.count("v1=") == 2
    assert wh.verify_chopay(body, header, ["new"], now=NOW) == NOW
    assert wh.verify_chopay(body, header, ["old"], now=NOW) == NOW
    with pytest.raises(WebhookError, match="signature_invalid"):
        wh.verify_chopay(body, header, ["retired"], now=NOW)


def test_signed_but_expired_is_expired_and_forged_and_expired_is_invalid():
    header = wh.sign_chopay(b"{}", SECRET, timestamp=NOW - 301)
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(b"{}", header, [SECRET], now=NOW)
    assert _code(exc) == "signature_expired"
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(b"{}", header, ["not-the-secret"], now=NOW)
    assert _code(exc) == "signature_invalid"


@pytest.mark.parametrize(
    ("header", "code", "words"),
    [
        (None, "signature_missing", "header is missing"),
        ("", "signature_missing", "header is missing"),
        ("garbage", "signature_malformed", "not a key=value pair"),
        ("v1=" + "a" * 64, "signature_malformed", "no timestamp"),
        (f"t={NOW}", "signature_malformed", "no v1= signature"),
        (f"t=soon,v1={'a' * 64}", "signature_malformed", "not unix seconds"),
        (f"t={NOW},t={NOW},v1={'a' * 64}", "signature_malformed", "given twice"),
        (f"t={NOW},v1=XYZ", "signature_malformed", "64 lowercase hex"),
        (f"t={NOW},v0={'a' * 64}", "signature_malformed", "no v1= signature"),
        (f"t={NOW},v1={'a' * 64}", "signature_invalid", "no signature matches"),
    ],
)
def test_each_bad_header_has_its_code_and_a_precise_message(header, code, words):
    with pytest.raises(WebhookError) as exc:
        wh.verify_chopay(b"{}", header, [SECRET], now=NOW)
    assert _code(exc) == code
    assert words in str(exc.value)


def test_no_live_secret_is_never_a_match():
    header = wh.sign_chopay(b"{}", "x", timestamp=NOW)
    with pytest.raises(WebhookError, match="no live secret"):
        wh.verify_chopay(b"{}", header, ["", ""], now=NOW)


def test_headers_name_the_connector():
    headers = wh.chopay_headers("cho-ben-thanh", b"{}", SECRET, timestamp=NOW)
    assert headers[wh.CONNECTOR_HEADER] == "cho-ben-thanh"
    assert wh.verify_chopay(b"{}", headers[wh.SIGNATURE_HEADER], [SECRET], now=NOW) == NOW


chopay_notes = st.builds(
    wh.ChopayNotification,
    bank_txn_id=st.from_regex(r"\AFT[0-9]{12}\Z"),
    bin=st.from_regex(r"\A97[0-9]{4}\Z"),
    account_number=st.from_regex(r"\A[0-9]{6,19}\Z"),
    amount=amounts,
    description=words,
    occurred_at=moments,
    payer_name=st.none() | words.filter(bool),
)


@given(chopay_notes)
def test_chopay_body_round_trips(note):
    assert wh.parse_chopay(note.to_json()) == note


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"amount": 1.5}, "amount: must be an integer"),
        ({"amount": 0}, "amount: must be 1.."),
        ({"amount": True}, "amount: must be an integer"),
        ({"bin": "97043"}, "bin: must be 6 digits"),
        ({"occurred_at": "2026-12-01T10:00:00"}, "needs a UTC offset"),
        ({"occurred_at": "yesterday"}, "not an ISO 8601"),
        ({"extra": 1}, "extra: unknown field"),
        ({"description": "a\x00b"}, "NUL"),
        ({"bank_txn_id": None}, "bank_txn_id: must be a string"),
    ],
)
def test_chopay_body_errors_name_the_field(change, words):
    good = wh.ChopayNotification(
        "FT000000000001", "970436", "0123456789", 50_000, "CPABCD2345", dt.datetime.now(dt.UTC)
    )
    obj = json.loads(good.to_json()) | change
    with pytest.raises(WebhookError) as exc:
        wh.parse_chopay(json.dumps(obj).encode())
    assert _code(exc) == "payload_malformed"
    assert words in exc.value.message


@pytest.mark.parametrize("body", [b"", b"[]", b"\xff\xfe", b'"text"', b"{"])
def test_bodies_that_are_not_objects_are_malformed(body):
    for parse in (wh.parse_chopay, wh.parse_sepay):
        with pytest.raises(WebhookError) as exc:
            parse(body)
        assert _code(exc) == "payload_malformed"


# --- SePay format ----------------------------------------------------------------------

SEPAY_DOC_EXAMPLE = {
    "id": 92704,
    "gateway": "Vietcombank",
    "transactionDate": "2023-03-25 14:02:37",
    "accountNumber": "0123499999",
    "code": None,
    "content": "chuyen tien mua iphone",
    "transferType": "in",
    "transferAmount": 2277000,
    "accumulated": 19077000,
    "subAccount": None,
    "referenceCode": "MBVCB.3278907687",
    "description": "",
}


def test_sepay_documented_example_parses():
    note = wh.parse_sepay(json.dumps(SEPAY_DOC_EXAMPLE).encode())
    assert note.id == 92704
    assert note.dedup_key == "92704"
    assert note.transaction_date == dt.datetime(2023, 3, 25, 7, 2, 37, tzinfo=dt.UTC)
    assert note.transfer_type == "in"
    assert note.transfer_amount == 2_277_000
    assert note.to_dict() == SEPAY_DOC_EXAMPLE


def test_sepay_description_is_optional():
    body = {k: v for k, v in SEPAY_DOC_EXAMPLE.items() if k != "description"}
    assert wh.parse_sepay(json.dumps(body).encode()).description == ""


sepay_notes = st.builds(
    wh.SepayNotification,
    id=st.integers(1, 2**53),
    gateway=st.sampled_from(["Vietcombank", "MBBank", "ACB", "TPBank"]),
    transaction_date=moments,
    account_number=st.from_regex(r"\A[0-9]{6,19}\Z"),
    code=st.none() | st.from_regex(r"\ACP[A-Z2-9]{8}\Z"),
    content=words,
    transfer_type=st.sampled_from(["in", "out"]),
    transfer_amount=amounts,
    accumulated=st.integers(-(10**13), 10**13),
    sub_account=st.none() | st.from_regex(r"\A[0-9A-Z]{1,12}\Z"),
    reference_code=st.none() | st.from_regex(r"\A[A-Z]{2,5}\.[0-9]{6,12}\Z"),
    description=words,
)


@given(sepay_notes)
def test_sepay_body_round_trips(note):
    assert wh.parse_sepay(note.to_json()) == note


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"transferType": "sideways"}, "transferType: must be 'in' or 'out'"),
        ({"transferAmount": 100.0}, "transferAmount: must be an integer"),
        ({"transactionDate": "2023-03-25T14:02:37Z"}, "transactionDate: expected"),
        ({"id": "92704"}, "id: must be an integer"),
        ({"accumulated": "1"}, "accumulated: must be an integer"),
    ],
)
def test_sepay_body_errors_name_the_field(change, words):
    with pytest.raises(WebhookError) as exc:
        wh.parse_sepay(json.dumps(SEPAY_DOC_EXAMPLE | change).encode())
    assert _code(exc) == "payload_malformed"
    assert words in exc.value.message


def test_sepay_missing_field_is_named():
    body = {k: v for k, v in SEPAY_DOC_EXAMPLE.items() if k != "gateway"}
    with pytest.raises(WebhookError, match="gateway: is required"):
        wh.parse_sepay(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "signature_missing"),
        ("  ", "signature_missing"),
        ("Bearer sk_live", "signature_malformed"),
        ("Apikey", "signature_malformed"),
        ("Apikey wrong", "signature_invalid"),
    ],
)
def test_sepay_api_key_failures(authorization, code):
    with pytest.raises(WebhookError) as exc:
        wh.verify_sepay(authorization, ["sepay_key_1"])
    assert _code(exc) == code


@given(key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64))
def test_sepay_headers_verify_with_any_live_key(key):
    wh.verify_sepay(wh.sepay_headers(key)["Authorization"], ["retired", key])
    wh.verify_sepay(f"apikey  {key}", [key])  # the scheme is case-insensitive, as HTTP schemes are


# --- payOS format ----------------------------------------------------------------------

CHECKSUM = "payos_checksum_test_0001"


def _payos(**changes) -> wh.PayosNotification:
    base = wh.PayosNotification(
        order_code=123,
        amount=3000,
        description="VQRIO123",
        account_number="12345678",
        reference="TF230204212323",
        transaction_date_time=dt.datetime(2023, 2, 4, 18, 25, tzinfo=wh.VIETNAM),
        currency="VND",
        payment_link_id="124c33293c43417ab7879e14c8d9eb18",
        code="00",
        desc="Thành công",
    )
    return wh.PayosNotification(**(base.__dict__ | changes))


def _sdk(key: str = CHECKSUM) -> PayOS:
    return PayOS("client", "api", key)


def test_payos_signature_is_the_sorted_query_string_hmac():
    data = _payos().to_data()
    text = "&".join(f"{k}={'' if data[k] is None else data[k]}" for k in sorted(data))
    expected = hmac.new(CHECKSUM.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert wh.payos_checksum(data, CHECKSUM) == expected
    assert json.loads(wh.sign_payos(_payos(), CHECKSUM))["signature"] == expected


payos_notes = st.builds(
    _payos,
    order_code=st.integers(1, 2**53),
    amount=amounts,
    description=words,
    account_number=st.from_regex(r"\A[0-9]{6,19}\Z"),
    reference=st.from_regex(r"\A[A-Z0-9]{6,20}\Z"),
    transaction_date_time=moments,
    counter_account_name=st.none() | words,
    counter_account_bank_id=st.none() | st.from_regex(r"\A97[0-9]{4}\Z"),
)


@given(note=payos_notes)
def test_the_sdk_accepts_what_we_sign_and_we_accept_what_it_checks(note):
    body = wh.sign_payos(note, CHECKSUM)
    sdk_data = _sdk().webhooks.verify(body)
    assert sdk_data.reference == note.reference
    assert wh.verify_payos(body, ["old-key", CHECKSUM]) == note


@given(note=payos_notes, amount=amounts)
def test_payos_tampering_is_refused_by_us_and_by_the_sdk(note, amount):
    body = json.loads(wh.sign_payos(note, CHECKSUM))
    if body["data"]["amount"] == amount:
        amount += 1 if amount < wh.MAX_AMOUNT else -1
    body["data"]["amount"] = amount
    with pytest.raises(WebhookError) as exc:
        wh.verify_payos(body, [CHECKSUM])
    assert _code(exc) == "signature_invalid"
    with pytest.raises(SdkWebhookError):
        _sdk().webhooks.verify(body)


def test_payos_wrong_key_is_invalid():
    with pytest.raises(WebhookError, match="signature_invalid"):
        wh.verify_payos(wh.sign_payos(_payos(), CHECKSUM), ["another-key"])


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.pop("signature"), "signature_missing"),
        (lambda b: b.update(signature="short"), "signature_malformed"),
        (lambda b: b["data"].pop("reference"), "payload_malformed"),
        (lambda b: b["data"].update(surprise=1), "payload_malformed"),
        (lambda b: b["data"].update(transactionDateTime="04/02/2023"), "payload_malformed"),
        (lambda b: b.update(data="x"), "payload_malformed"),
        (lambda b: b["data"].update(description="a\ud800"), "payload_malformed"),
    ],
)
def test_payos_bad_bodies_have_their_code(mutate, code):
    body = json.loads(wh.sign_payos(_payos(), CHECKSUM))
    mutate(body)
    if code == "payload_malformed" and isinstance(body.get("data"), dict):
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate cannot be signed at all
            body["signature"] = wh.payos_checksum(body["data"], CHECKSUM)
    with pytest.raises(WebhookError) as exc:
        wh.verify_payos(json.dumps(body).encode(), [CHECKSUM])
    assert _code(exc) == code


@given(st.text(max_size=200))
def test_arbitrary_payos_bodies_fail_only_with_webhook_errors(text):
    with pytest.raises(WebhookError) as exc:
        wh.verify_payos(text, [CHECKSUM])
    assert exc.value.code in wh.CODES


def test_vietnam_time_round_trips_and_refuses_naive():
    moment = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    assert wh.format_vietnam_time(moment) == "2026-12-01 10:00:00"
    assert wh.parse_vietnam_time("2026-12-01 10:00:00") == moment
    with pytest.raises(ValueError, match="naive"):
        wh.format_vietnam_time(dt.datetime(2026, 12, 1))  # noqa: DTZ001 - the point of the test
