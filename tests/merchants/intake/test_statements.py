"""Payments, daily statements (Vietnam days), market figures, and who may read them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from merchants.models import Merchant
from tests.merchants.intake.conftest import Bank, chopay_body

Headers = dict[str, str]


@pytest.fixture
def paid(bank: Bank, make_merchant: Callable[..., Merchant]) -> tuple[Merchant, Merchant]:
    """Two vendors of one market; the first paid three times across a Vietnam midnight."""
    a, b = make_merchant(1), make_merchant(2)
    for n, (when, amount) in enumerate(
        [
            ("2026-12-01T16:59:59+00:00", 10_000),  # 23:59:59 on 1 December in Vietnam
            ("2026-12-01T17:00:00+00:00", 20_000),  # 00:00:00 on 2 December
            ("2026-12-02T09:00:00+07:00", 30_000),
        ]
    ):
        resp = bank.chopay(
            chopay_body(
                bank_txn_id=f"FT{n}", account_number=a.account_number, occurred_at=when, amount=amount
            )
        )
        assert resp.status_code == 201
    return a, b


def test_a_statement_counts_a_vietnam_day(
    client: Any, officer: Headers, paid: tuple[Merchant, Merchant]
) -> None:
    a, _ = paid
    day = client.get(f"/v1/merchants/{a.public_id}/statement?date=2026-12-02", headers=officer).get_json()
    assert day["count"] == 2
    assert day["total"] == 50_000
    assert day["first"]["amount"] == 20_000
    assert day["last"]["amount"] == 30_000
    assert [p["amount"] for p in day["payments"]] == [20_000, 30_000]
    before = client.get(f"/v1/merchants/{a.public_id}/statement?date=2026-12-01", headers=officer).get_json()
    assert (before["count"], before["total"]) == (1, 10_000)
    empty = client.get(f"/v1/merchants/{a.public_id}/statement?date=2026-11-30", headers=officer).get_json()
    assert (empty["count"], empty["total"], empty["first"], empty["last"]) == (0, 0, None, None)


def test_a_statement_as_csv(client: Any, officer: Headers, paid: tuple[Merchant, Merchant]) -> None:
    a, _ = paid
    resp = client.get(f"/v1/merchants/{a.public_id}/statement.csv?date=2026-12-02", headers=officer)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["amount"] for r in rows] == ["20000", "30000"]
    assert rows[0]["occurred_at"] == "2026-12-02T00:00:00+07:00"


def test_payments_are_cursor_pages_within_days(
    client: Any, officer: Headers, paid: tuple[Merchant, Merchant]
) -> None:
    a, _ = paid
    url = f"/v1/merchants/{a.public_id}/payments"
    first = client.get(url + "?limit=2", headers=officer).get_json()
    assert len(first["items"]) == 2
    rest = client.get(f"{url}?limit=2&cursor={first['next_cursor']}", headers=officer).get_json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    day = client.get(url + "?from=2026-12-02&to=2026-12-02", headers=officer).get_json()
    assert [p["amount"] for p in day["items"]] == [20_000, 30_000]
    bad = client.get(url + "?from=2026-12-03&to=2026-12-02", headers=officer)
    assert bad.status_code == 422
    assert "to" in bad.get_json()["errors"]["query"]


def test_market_figures(client: Any, officer: Headers, paid: tuple[Merchant, Merchant]) -> None:
    resp = client.get("/v1/markets/CHO-HAN/figures?from=2026-12-01&to=2026-12-02", headers=officer)
    assert resp.status_code == 200, resp.get_json()
    figures = resp.get_json()
    assert figures["registered_vendors"] == 2
    assert figures["active_vendors"] == 2
    assert figures["vendors_paid_7d"] == 1
    assert figures["vendors_paid_30d"] == 1
    assert figures["payment_count"] == 3
    assert figures["payment_value"] == 60_000
    assert figures["days"] == [
        {"date": "2026-12-01", "count": 1, "value": 10_000},
        {"date": "2026-12-02", "count": 2, "value": 50_000},
    ]
    assert figures["qr_acceptance_share"] == 0.5
    assert figures["from"] == "2026-12-01"
    other = client.get(
        "/v1/markets/CHO-KHAC/figures?from=2026-12-01&to=2026-12-02", headers=officer
    ).get_json()
    assert (other["registered_vendors"], other["qr_acceptance_share"]) == (0, 0.0)
    long = client.get("/v1/markets/CHO-HAN/figures?from=2024-01-01&to=2026-12-02", headers=officer)
    assert long.status_code == 422


def test_role_matrix(
    client: Any, user: Callable[..., tuple[int, Headers]], paid: tuple[Merchant, Merchant]
) -> None:
    a, b = paid
    roles = {r: user(r)[1] for r in ("admin", "officer", "approver", "auditor")}
    own = user("merchant", a.id)[1]
    foreign = user("merchant", b.id)[1]
    merchant_paths = [
        f"/v1/merchants/{a.public_id}/payments",
        f"/v1/merchants/{a.public_id}/statement?date=2026-12-02",
        f"/v1/merchants/{a.public_id}/statement.csv?date=2026-12-02",
    ]
    for path in merchant_paths:
        assert client.get(path).status_code == 401
        assert client.get(path, headers=own).status_code == 200
        assert client.get(path, headers=roles["officer"]).status_code == 200
        assert client.get(path, headers=roles["admin"]).status_code == 200
        assert client.get(path, headers=roles["auditor"]).status_code == 403
        assert client.get(path, headers=roles["approver"]).status_code == 403
        probe = client.get(path, headers=foreign)
        missing = client.get(path.replace(a.public_id, "m_2222222222"), headers=foreign)
        assert probe.status_code == missing.status_code == 404
        assert probe.get_json()["detail"].replace(a.public_id, "X") == missing.get_json()["detail"].replace(
            "m_2222222222", "X"
        )
    events = f"/v1/merchants/{a.public_id}/events"
    assert client.get(events, headers=foreign).status_code == 404
    assert client.get(events, headers=roles["auditor"]).status_code == 403
    readers = {"admin": 200, "officer": 200, "auditor": 200, "approver": 403}
    first = client.get("/v1/bank-notifications", headers=roles["admin"]).get_json()["items"][0]["id"]
    for path in [
        "/v1/bank-notifications",
        f"/v1/bank-notifications/{first}",
        "/v1/bank-notifications/conflicts",
    ]:
        for role, status in readers.items():
            assert client.get(path, headers=roles[role]).status_code == status, (path, role)
        assert client.get(path, headers=own).status_code == 403
    figures = "/v1/markets/CHO-HAN/figures?from=2026-12-01&to=2026-12-02"
    for role, status in {"admin": 200, "officer": 200, "auditor": 403, "approver": 403}.items():
        assert client.get(figures, headers=roles[role]).status_code == status
    assert client.get(figures, headers=own).status_code == 403
    assign = f"/v1/bank-notifications/{first}/assign"
    for headers in (roles["auditor"], roles["approver"], own):
        assert client.post(assign, json={"merchant": a.public_id}, headers=headers).status_code == 403
    # The intake's answers reveal no holder name and no phone.
    for path in merchant_paths[:2]:
        text = client.get(path, headers=own).get_data(as_text=True)
        assert "NGUYEN VAN THU" not in text
        assert "090000000" not in text
