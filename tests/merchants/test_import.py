"""Merchant import from CSV and XLSX: Excel habits tolerated, bad rows reported, each row created once."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from merchants.services.imports import COLUMNS
from tests.chopay.helpers import assert_problem
from tests.disbursement.helpers import csv_file, xlsx_file
from tests.merchants.conftest import Headers, vendor

HEADER = list(COLUMNS.known)


def rows(*numbers: int, **changes: Any) -> list[list[Any]]:
    out = []
    for n in numbers:
        values = vendor(n, **changes)
        out.append([values.get(c, "") for c in HEADER])
    return out


def upload(client: FlaskClient, headers: Headers, data: bytes, name: str = "cho-han.csv") -> Any:
    return client.post(
        "/v1/merchants/import",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_csv_with_bom_crlf_and_trailing_blank_rows(client: FlaskClient, officer: Headers) -> None:
    data = csv_file(HEADER, [*rows(1, 2, 3), [""] * len(HEADER), [""] * len(HEADER)], bom=True, crlf=True)
    report = upload(client, officer, data).get_json()
    assert (report["rows"], report["created"], report["rejected"]) == (3, 3, 0)
    listed = client.get("/v1/merchants", headers=officer).get_json()["items"]
    assert [m["stall"] for m in listed] == ["A-001", "A-002", "A-003"]
    assert [m["id"] for m in listed] == [r["id"] for r in report["merchants"]]


def test_uploading_twice_creates_each_merchant_once(client: FlaskClient, officer: Headers) -> None:
    data = csv_file(HEADER, rows(1, 2))
    first = upload(client, officer, data).get_json()
    second = upload(client, officer, data).get_json()
    assert (first["created"], first["existing"]) == (2, 0)
    assert (second["created"], second["existing"], second["rejected"]) == (0, 2, 0)
    assert [r["id"] for r in second["merchants"]] == [r["id"] for r in first["merchants"]]
    assert len(client.get("/v1/merchants", headers=officer).get_json()["items"]) == 2


def test_every_bad_row_is_reported_by_number(client: FlaskClient, officer: Headers) -> None:
    good = rows(1)
    bad_bin = rows(2, bin="999998")
    duplicate = rows(3, account_number=vendor(1)["account_number"])
    no_ascii = rows(4, display_name="菜摊")
    short_account = rows(5, account_number="123")
    report = upload(
        client, officer, csv_file(HEADER, good + bad_bin + duplicate + no_ascii + short_account)
    ).get_json()
    assert (report["rows"], report["created"], report["rejected"]) == (5, 1, 4)
    found = {(e["row"], e["column"], e["code"]) for e in report["errors"]}
    assert found == {
        (3, "bin", "bin_unknown"),
        (4, "account_number", "duplicate_in_file"),
        (5, "qr_name", "qr_name_not_ascii"),
        (6, "account_number", "account_number_invalid"),
    }
    assert len(client.get("/v1/merchants", headers=officer).get_json()["items"]) == 1


def test_row_for_an_account_of_another_active_merchant(client: FlaskClient, officer: Headers) -> None:
    upload(client, officer, csv_file(HEADER, rows(1)))
    report = upload(client, officer, csv_file(HEADER, rows(1, display_name="Sạp khác Thử"))).get_json()
    [error] = report["errors"]
    assert (error["row"], error["code"]) == (2, "merchant_exists")


def test_xlsx_import(client: FlaskClient, officer: Headers) -> None:
    report = upload(client, officer, xlsx_file(HEADER, rows(1, 2)), "cho-han.xlsx").get_json()
    assert (report["created"], report["rejected"]) == (2, 0)


def test_xlsx_number_cell_account_is_reported(client: FlaskClient, officer: Headers) -> None:
    table = rows(1)
    table[0][HEADER.index("account_number")] = 9_000_000_001
    report = upload(client, officer, xlsx_file(HEADER, table), "cho-han.xlsx").get_json()
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(2, "account_number_not_text")]


def test_missing_column_rejects_the_file(client: FlaskClient, officer: Headers) -> None:
    at = HEADER.index("bin")
    header = HEADER[:at] + HEADER[at + 1 :]
    data = csv_file(header, [r[:at] + r[at + 1 :] for r in rows(1)])
    body = assert_problem(upload(client, officer, data), 422, "column_missing")
    assert "bin" in body["detail"]
    assert client.get("/v1/merchants", headers=officer).get_json()["items"] == []


def test_zip_bomb_is_rejected(client: FlaskClient, officer: Headers) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    body = assert_problem(upload(client, officer, out.getvalue(), "bomb.xlsx"), 422, "xlsx_too_large")
    assert "zip bomb" in body["detail"]


def test_empty_file_and_missing_part(client: FlaskClient, officer: Headers) -> None:
    assert_problem(upload(client, officer, b""), 422, "file_empty")
    resp = client.post(
        "/v1/merchants/import", data={"other": "x"}, headers=officer, content_type="multipart/form-data"
    )
    assert_problem(resp, 422, "file_missing")


CELL = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.lists(CELL, min_size=len(HEADER), max_size=len(HEADER)), max_size=6))
def test_any_table_is_accepted_or_reported_row_by_row(
    client: FlaskClient, officer: Headers, table: list[list[str]]
) -> None:
    resp = upload(client, officer, csv_file(HEADER, table))
    assert resp.status_code in (200, 422), resp.get_data(as_text=True)
    body = resp.get_json()
    if resp.status_code == 422:
        assert body["code"] in {"file_empty", "row_unreadable", "file_encoding", "column_missing"}
        return
    assert body["rows"] == body["created"] + body["existing"] + body["rejected"]
    assert {e["row"] for e in body["errors"]} <= set(range(2, 2 + len(table) + 1))
    assert len({e["row"] for e in body["errors"]}) == body["rejected"]


def test_an_import_may_exceed_the_json_body_limit(make_app: Callable[..., Flask], officer: Headers) -> None:
    data = csv_file(HEADER, rows(*range(1, 40)))
    assert len(data) > 2048
    roomy = make_app(max_body_bytes=2048, max_upload_bytes=1024 * 1024).test_client()
    assert upload(roomy, officer, data).get_json()["created"] == 39
    tight = make_app(max_body_bytes=2048, max_upload_bytes=2048).test_client()
    assert_problem(upload(tight, officer, data), 413, "payload_too_large")


def test_reimport_after_an_edit_of_a_derived_field_is_existing(client: FlaskClient, officer: Headers) -> None:
    data = csv_file(HEADER, rows(1))
    [row] = upload(client, officer, data).get_json()["merchants"]
    client.patch(f"/v1/merchants/{row['id']}", json={"qr_name": "BA THU RAU SACH"}, headers=officer)
    again = upload(client, officer, data).get_json()
    assert (again["existing"], again["rejected"]) == (1, 0)
    assert (
        client.get(f"/v1/merchants/{row['id']}", headers=officer).get_json()["qr_name"] == "BA THU RAU SACH"
    )
