"""What hostile or careless clients sent to the ledger API: each gets a precise 4xx and writes nothing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from chopay.db import get_db
from chopay.users import create_user
from payments.ledger import domain, services
from payments.ledger.domain import MAX_BALANCE, MAX_POSTINGS, Posting, TransactionSpec
from payments.ledger.errors import BalanceOutOfRange, InvalidTransaction
from payments.ledger.models import Account, Transaction
from qr.schemes import MAX_AMOUNT
from tests.chopay.helpers import assert_problem

from .conftest import ENTRY


def _counts(client, auditor):
    accounts = client.get("/v1/ledger/accounts", headers=auditor).json["items"]
    return {a["code"]: a["balance"] for a in accounts}


def _post(client, admin, **overrides):
    return client.post("/v1/ledger/transactions", headers=admin, json={**ENTRY, **overrides})


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59+00:00",
        "2200-01-01T00:00:00Z",
    ],
)
def test_instants_near_the_calendars_edges_are_a_422(opened, admin, auditor, occurred_at):
    before = _counts(opened, auditor)
    body = assert_problem(_post(opened, admin, occurred_at=occurred_at), 422, "field_invalid")
    assert "occurred_at" in body["detail"]
    assert _counts(opened, auditor) == before


def test_an_instant_inside_the_bounds_is_kept_exactly(opened, admin):
    resp = _post(opened, admin, occurred_at="2000-01-01T07:00:00.000001+07:00")
    assert resp.status_code == 201
    assert resp.json["occurred_at"] == "2000-01-01T00:00:00.000001+00:00"


@pytest.mark.parametrize(
    "metadata",
    [
        {"Name": "Nguyen Van Test"},
        {"phone_number": "0900000001"},
        {"national_id": "001099012345"},
        {"payout_ref": {"national_id": "001099012345"}},
        {"payout_ref": "Nguyễn Văn Test"},
        {"payout_ref": "has space"},
    ],
)
def test_metadata_outside_the_reference_allow_list_never_reaches_a_leaf(opened, admin, auditor, metadata):
    before = _counts(opened, auditor)
    resp = _post(opened, admin, metadata=metadata)
    assert resp.status_code == 422
    assert resp.json["code"] == "validation_failed"
    assert _counts(opened, auditor) == before


def test_metadata_nested_hundreds_of_levels_is_a_4xx(opened, admin):
    deep: dict = {}
    node = deep
    for _ in range(340):
        node["payout_ref"] = {}
        node = node["payout_ref"]
    assert_problem(_post(opened, admin, metadata=deep), 400, "json_too_deep")


@pytest.mark.parametrize("depth", [976, 979, 983])
def test_top_level_nesting_just_under_the_parser_limit_is_a_400(opened, admin, depth):
    raw = b"[" * depth + b"]" * depth
    resp = opened.post("/v1/ledger/transactions", headers=admin, data=raw, content_type="application/json")
    assert_problem(resp, 400, "json_too_deep")


LOOK_ALIKE_DIGITS = {
    "fullwidth": str.maketrans("0123456789", "０１２３４５６７８９"),
    "arabic-indic": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    "superscript": str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"),
}


@pytest.mark.parametrize("digits", sorted(LOOK_ALIKE_DIGITS))
def test_transaction_ids_in_look_alike_digits_name_nothing(opened, admin, auditor, digits):
    tx_id = _post(opened, admin).json["id"]
    look_alike = "TX-" + tx_id[3:].translate(LOOK_ALIKE_DIGITS[digits])
    assert look_alike[3:].isdigit()  # what str.isdigit() alone would have accepted
    assert domain.parse_public_id(look_alike) is None
    url = f"/v1/ledger/transactions/{look_alike}"
    assert_problem(opened.get(url, headers=auditor), 404, "not_found")  # no route takes it
    assert_problem(opened.post(f"{url}/reverse", headers=admin, json={"reason": "probe"}), 404, "not_found")
    assert opened.get(f"/v1/ledger/transactions/{tx_id}", headers=auditor).json["reverses"] is None


@pytest.mark.parametrize(
    "tx_id", ["TX-9223372036854775808", "TX-0", "TX--1", "tx-1", "TX-12345678901234567890"]
)
def test_transaction_ids_outside_the_id_range_name_nothing(opened, auditor, tx_id):
    assert_problem(
        opened.get(f"/v1/ledger/transactions/{tx_id}", headers=auditor), 404, "transaction_not_found"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/ledger/entries?from_index=9223372036854775808",
        "/v1/ledger/accounts/bank:settlement/balance?at=9223372036854775808",
        "/v1/ledger/export?from_index=9223372036854775808",
        "/v1/ledger/entries/9223372036854775808",
        "/v1/ledger/consistency?first=9223372036854775808",
    ],
)
def test_query_integers_past_a_bigint_are_a_4xx_not_a_500(opened, auditor, path):
    resp = opened.get(path, headers=auditor)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("field", "value"),
    [("memo", "nul\x00here"), ("kind", "jour\x00nal"), ("memo", "bell\x07"), ("kind", "Journal")],
)
def test_control_characters_and_odd_identifiers_are_refused_on_every_database(
    opened, admin, auditor, field, value
):
    before = _counts(opened, auditor)
    resp = _post(opened, admin, **{field: value})
    assert 400 <= resp.status_code < 500
    assert _counts(opened, auditor) == before


def test_a_nul_in_an_account_code_is_refused(opened, admin, auditor):
    resp = opened.post("/v1/ledger/accounts", headers=admin, json={"code": "bank:\x00x", "kind": "asset"})
    assert_problem(resp, 400, "invalid_text")
    assert_problem(
        opened.get("/v1/ledger/accounts/bank:%00x/balance", headers=auditor), 400, "invalid_character"
    )


@pytest.mark.parametrize(
    "code",
    [
        "program:TCXH:bud\u200bget",
        "bank\u202esettlement",
        "bank:\x07bell",
        "Cafe\u0301",
        "has space",
        ":leading",
    ],
)
def test_look_alike_account_codes_cannot_be_opened(opened, admin, code):
    resp = opened.post("/v1/ledger/accounts", headers=admin, json={"code": code, "kind": "asset"})
    assert resp.status_code in {400, 422}
    with pytest.raises(InvalidTransaction) as err:
        domain.check_account_code(code)
    assert err.value.code == "account_code_invalid"


def test_more_postings_than_the_documented_maximum_are_a_422(opened, admin, auditor):
    postings = [{"account": "bank:settlement", "amount": 1}] * MAX_POSTINGS + [
        {"account": "equity:opening", "amount": -MAX_POSTINGS}
    ]
    body = assert_problem(_post(opened, admin, postings=postings), 422, "validation_failed")
    assert "postings" in body["errors"]["json"]
    with pytest.raises(InvalidTransaction) as err:
        domain.validate(
            TransactionSpec("k", "journal", "m", [Posting(p["account"], p["amount"]) for p in postings])
        )
    assert err.value.code == "postings_too_many"


def test_a_balance_can_never_leave_its_bound(book, make_spec):
    # Each posting is within the 13-digit bound; together they bring one account to its bound.
    half = MAX_POSTINGS // 2
    step = half * MAX_AMOUNT
    legs = [Posting("bank:settlement", MAX_AMOUNT)] * half + [Posting("equity:opening", -MAX_AMOUNT)] * half
    services.post_many(
        book, [TransactionSpec(f"big-{i}", "journal", "big", legs) for i in range(MAX_BALANCE // step)]
    )
    balance = book.scalar(sa.select(Account.balance).where(Account.code == "bank:settlement"))
    assert MAX_BALANCE - step < balance <= MAX_BALANCE
    before = book.scalar(sa.select(sa.func.count()).select_from(Transaction))
    with pytest.raises(BalanceOutOfRange) as err:
        services.post(book, make_spec("over", MAX_AMOUNT, debit="bank:settlement", credit="equity:opening"))
    assert err.value.status == 422
    assert book.scalar(sa.select(sa.func.count()).select_from(Transaction)) == before
    raw = sa.text("SELECT balance FROM ledger_accounts WHERE code = 'bank:settlement'")
    stored = book.execute(raw).scalar()
    assert type(stored) is int  # never a REAL on SQLite
    assert stored == balance


def test_idempotency_keys_up_to_the_documented_length_post(opened, admin, auditor):
    for length in (190, 192, 199, 200):
        key = "k" * (length - 3) + f"{length:03d}"
        resp = opened.post("/v1/ledger/transactions", headers={**admin, "Idempotency-Key": key}, json=ENTRY)
        assert resp.status_code == 201, (length, resp.json)
        assert len(resp.json["idempotency_key"]) <= domain.MAX_KEY
        again = opened.post("/v1/ledger/transactions", headers={**admin, "Idempotency-Key": key}, json=ENTRY)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json["id"] == resp.json["id"]


def test_a_reversal_reason_is_stored_nfc(opened, admin, auditor):
    (tx_id,) = [_post(opened, admin).json["id"]]
    resp = opened.post(
        f"/v1/ledger/transactions/{tx_id}/reverse", headers=admin, json={"reason": "nha\u0300 ba\u0306ng"}
    )
    assert resp.status_code == 201
    assert resp.json["memo"] == f"Reversal of {tx_id}: nhà băng"
    assert resp.json["metadata"] == {}


def test_thirty_concurrent_reversals_give_one_201_and_409s(committed_app):
    database = get_db(committed_app)
    with database.unit_of_work() as s:
        token = create_user(s, name="Test Reverser", role="admin").token
        services.create_account(s, code="bank:settlement", kind="asset")
        services.create_account(s, code="equity:opening", kind="equity")
        tx = services.post(
            s,
            TransactionSpec(
                "to-reverse", "journal", "x", [Posting("bank:settlement", 7), Posting("equity:opening", -7)]
            ),
        )
    barrier = threading.Barrier(30)
    statuses: list[int] = []
    lock = threading.Lock()

    def reverse(i: int) -> None:
        client = committed_app.test_client()
        barrier.wait(timeout=30)
        resp = client.post(
            f"/v1/ledger/transactions/{tx.public_id}/reverse",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"rev-{i}"},
            json={"reason": "concurrent"},
        )
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=reverse, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [201] + [409] * 29
    with database.session() as s:
        reversals = s.scalar(
            sa.select(sa.func.count()).select_from(Transaction).where(Transaction.reverses_id == tx.id)
        )
        assert reversals == 1
        assert s.scalar(sa.select(Account.balance).where(Account.code == "bank:settlement")) == 0


def test_checkpoint_pages_follow_their_cursor(opened, app, admin, auditor):
    from chopay.jobs import runner

    for i in range(5):
        _post(opened, admin, memo=f"entry {i}")
        runner(app).run_pending()
    sizes, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = opened.get(f"/v1/ledger/checkpoints{query}", headers=auditor).json
        sizes += [cp["size"] for cp in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == 5
    assert len(sizes) == len(opened.get("/v1/ledger/checkpoints?limit=500", headers=auditor).json["items"])


def test_a_cursor_past_the_end_is_an_empty_page(opened, auditor):
    page = opened.get("/v1/ledger/checkpoints?cursor=999999", headers=auditor).json
    assert page == {"items": [], "next_cursor": None}


def test_balance_at_an_instant_beyond_the_calendar_is_clamped(opened, admin, auditor):
    _post(opened, admin)
    early = opened.get(
        "/v1/ledger/accounts/bank:settlement/balance?at=0001-01-01T00:00:00%2B14:00", headers=auditor
    )
    late = opened.get(
        "/v1/ledger/accounts/bank:settlement/balance?at=9999-12-31T23:59:59-14:00", headers=auditor
    )
    assert (early.status_code, early.json["balance"]) == (200, 0)
    assert (late.status_code, late.json["balance"]) == (200, 5_000_000)
    assert dt.datetime.fromisoformat(late.json["at"]).year == 9999
