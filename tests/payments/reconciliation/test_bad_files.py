"""Every kind of bad statement through the API: a precise, located 422, and nothing stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from chopay.db import get_db
from payments.reconciliation.models import Item, Reconciliation, StatementRecord
from tests.chopay.helpers import assert_problem
from tests.payments.reconciliation.conftest import upload
from tests.payments.reconciliation.planted import OPENING, PERIOD, PLANTED, statement
from tests.payments.reconciliation.test_camt053 import BILLION_LAUGHS, EXTERNAL_DTD, XXE
from tests.payments.reconciliation.writers import camt053, mt940

LINES = [x for x, _, _ in PLANTED]


def _camt(**kw) -> bytes:
    return camt053(LINES, OPENING, period=PERIOD, **kw)


def _truncated() -> bytes:
    data = _camt()
    return data[: data.index(b"<Ntry>", data.index(b"FB0003")) + 40]


def _mt940_broken_61() -> bytes:
    text = mt940(LINES, OPENING, period=PERIOD).decode()
    return text.replace(":61:2611021102D150000,00", ":61:26110X1102D150000,00", 1).encode()


def _csv(edit: tuple[str, str]) -> bytes:
    data, _ = statement("csv")
    return data.decode().replace(*edit, 1).encode()


BAD = {
    "truncated-xml": (_truncated(), "camt053", "statement_malformed", "Ntry[4]"),
    "wrong-namespace": (
        _camt().replace(b"camt.053.001.02", b"camt.052.001.02"),
        "camt053",
        "namespace_unsupported",
        "/Document",
    ),
    "unbalanced": (_camt(closing=OPENING + 1), "camt053", "statement_unbalanced", "/Bal[2]"),
    "wrong-currency": (
        _camt().replace(b'Ccy="VND">150000', b'Ccy="USD">150000', 1),
        "camt053",
        "currency_not_vnd",
        "Ntry[1]",
    ),
    "dates-out-of-order": (
        _camt().replace(b"<BookgDt><Dt>2026-11-03</Dt>", b"<BookgDt><Dt>2026-11-01</Dt>", 1),
        "camt053",
        "date_out_of_order",
        "Ntry[3]",
    ),
    "csv-missing-columns": (
        _csv(("line_id,booking_date", "id,booking_date")),
        "csv",
        "column_missing",
        "line 1",
    ),
    "mt940-broken-61": (_mt940_broken_61(), "mt940", "statement_malformed", "line "),
    "billion-laughs": (BILLION_LAUGHS, "camt053", "xml_forbidden", "line 2, column "),
    "xxe": (XXE, "camt053", "xml_forbidden", "line 2, column "),
    "external-dtd": (EXTERNAL_DTD, "camt053", "xml_forbidden", "line 2, column "),
}


def _stored(app) -> int:
    with get_db(app).read_session() as s:
        return sum(
            int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)
            for model in (StatementRecord, Reconciliation, Item)
        )


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_gets_a_located_error_and_nothing_is_stored(app, client, auditor, book, case):
    data, fmt, code, where = BAD[case]
    fields = {"format": fmt} | ({"from": "2026-11-01", "to": "2026-11-30"} if fmt == "csv" else {})
    resp = upload(client, auditor, data, **fields)
    body = assert_problem(resp, 422, code)
    assert where in body["location"], body
    assert body["errors"][0]["code"] == code
    assert all(e["location"] for e in body["errors"])
    # Messages quote ids and amounts, never a description (a payer's name) or a file's secrets.
    assert "Nguyen Van Test" not in resp.get_data(as_text=True)
    assert "passwd" not in resp.get_data(as_text=True)
    assert _stored(app) == 0
    assert client.get("/v1/reconciliations", headers=auditor).json["items"] == []


def test_period_is_for_csv_only(client, auditor, book):
    data, _ = statement("mt940")
    resp = upload(client, auditor, data, format="mt940", **{"from": "2026-11-01", "to": "2026-11-30"})
    assert_problem(resp, 422, "upload_invalid")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"format": "pdf"}, "format"),
        ({"date_window_days": "99"}, "date_window_days"),
        ({"preset": "excel"}, "preset"),
    ],
)
def test_bad_form_fields_are_named(client, auditor, book, fields, field):
    data, _ = statement("csv")
    body = assert_problem(upload(client, auditor, data, **fields), 422, "validation_failed")
    assert field in str(body["errors"])


def test_a_period_may_give_one_day_and_must_not_end_before_it_starts(client, auditor, book):
    data, _ = statement("csv")
    # One day given: the other is the statement's first or last line's.
    assert upload(client, auditor, data, **{"from": "2000-01-01"}).status_code in (200, 202)
    reversed_period = upload(client, auditor, data, **{"from": "2999-12-31", "to": "2000-01-01"})
    body = assert_problem(reversed_period, 422, reversed_period.get_json()["code"])
    assert body["code"] != "validation_failed"
    assert "before it starts" in body["detail"]


def test_a_statement_file_is_required(client, auditor, book):
    resp = client.post(
        "/v1/reconciliations",
        headers=auditor,
        data={"account": "program:TCXH:budget"},
        content_type="multipart/form-data",
    )
    body = assert_problem(resp, 422, "validation_failed")
    assert "statement" in str(body["errors"])
