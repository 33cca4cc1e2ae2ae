"""The beneficiary registry: CCCD checks, masking, history, search and the file import."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from disbursement.models import Beneficiary
from tests.chopay.helpers import assert_problem
from tests.disbursement.helpers import csv_file, person, xlsx_file

IMPORT_HEADER = [
    "national_id",
    "full_name",
    "date_of_birth",
    "gender",
    "ward",
    "province",
    "phone",
    "bin",
    "account_number",
    "program",
    "enrolled_from",
]


def test_create_masks_personal_data_and_stores_only_ciphertext(
    client: FlaskClient, officer: dict[str, str], session: Session
):
    p = person(7)
    resp = client.post("/v1/beneficiaries", json=p, headers=officer)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["national_id"] == p["national_id"][0] + "********" + p["national_id"][-3:]
    assert body["phone"] == "0******007"
    assert body["account_number"] == "9******007"
    assert p["national_id"] not in resp.get_data(as_text=True)
    row = session.scalar(sa.select(Beneficiary).where(Beneficiary.id == body["id"]))
    assert row is not None
    for value in (row.national_id, row.phone, row.account_number):
        assert value.startswith("d1:")
        assert p["national_id"] not in value
        assert p["phone"] not in value
    assert row.name_key == "nguyenvantest0007"


def test_cccd_must_agree_with_birth_and_gender(client: FlaskClient, officer: dict[str, str]):
    p = person(8, born=__import__("datetime").date(1961, 1, 1), gender="male")
    wrong = {**p, "gender": "female"}
    body = assert_problem(
        client.post("/v1/beneficiaries", json=wrong, headers=officer), 422, "national_id_gender_mismatch"
    )
    assert body["problems"][0]["field"] == "national_id"
    older = {**p, "date_of_birth": "1971-01-01"}
    assert_problem(
        client.post("/v1/beneficiaries", json=older, headers=officer), 422, "national_id_birth_year_mismatch"
    )
    several = {**p, "date_of_birth": "2071-01-01", "gender": "female"}
    body = assert_problem(
        client.post("/v1/beneficiaries", json=several, headers=officer), 422, "fields_invalid"
    )
    assert {x["code"] for x in body["problems"]} >= {"national_id_gender_mismatch", "date_of_birth_invalid"}
    assert client.post("/v1/beneficiaries", json=p, headers=officer).status_code == 201
    assert_problem(client.post("/v1/beneficiaries", json=p, headers=officer), 409, "beneficiary_exists")


def test_bad_fields_each_get_a_code(client: FlaskClient, officer: dict[str, str]):
    cases = {
        "phone_invalid": {"phone": "12345"},
        "bin_unknown": {"bin": "123456"},
        "account_number_invalid": {"account_number": "12-34"},
        "destination_incomplete": {"bin": None},
        "national_id_leading_zero_lost": {"national_id": person(9)["national_id"][1:]},
        "national_id_province_unknown": {"national_id": "003" + person(9)["national_id"][3:]},
    }
    for code, change in cases.items():
        assert_problem(
            client.post("/v1/beneficiaries", json={**person(9), **change}, headers=officer), 422, code
        )


def test_update_keeps_a_masked_history_and_lookup_goes_through_the_blind_index(
    client: FlaskClient, officer: dict[str, str]
):
    p = person(10)
    created = client.post("/v1/beneficiaries", json=p, headers=officer).get_json()
    url = f"/v1/beneficiaries/{created['id']}"
    resp = client.patch(url, json={"account_number": "8000000010", "status": "suspended"}, headers=officer)
    assert resp.status_code == 200
    assert resp.get_json()["version"] == 2
    assert resp.get_json()["account_number"] == "8******010"
    changes = client.get(f"{url}/history", headers=officer).get_json()["items"]
    assert changes[0]["changes"] == {
        "account_number": ["9******010", "8******010"],
        "status": ["active", "suspended"],
    }
    assert "8000000010" not in str(changes)
    same = client.patch(url, json={"status": "suspended"}, headers=officer)
    assert same.get_json()["version"] == 2  # nothing changed, nothing recorded
    found = client.post("/v1/beneficiaries/lookup", json={"national_id": p["national_id"]}, headers=officer)
    assert found.get_json()["id"] == created["id"]
    missing = client.post("/v1/beneficiaries/lookup", json={"national_id": "049061999999"}, headers=officer)
    assert_problem(missing, 404, "beneficiary_not_found")
    assert_problem(client.get("/v1/beneficiaries/999999", headers=officer), 404, "beneficiary_not_found")


def test_search_by_name_ignores_case_and_diacritics(client: FlaskClient, officer: dict[str, str]):
    for i in (1, 2, 3):
        client.post("/v1/beneficiaries", json=person(i, full_name=f"Trần Thị Bích Test {i}"), headers=officer)
    client.post("/v1/beneficiaries", json=person(4), headers=officer)
    found = client.get("/v1/beneficiaries?name=tran thi bich", headers=officer).get_json()["items"]
    assert [b["full_name"] for b in found] == [f"Trần Thị Bích Test {i}" for i in (1, 2, 3)]
    page1 = client.get("/v1/beneficiaries?limit=2", headers=officer).get_json()
    page2 = client.get(f"/v1/beneficiaries?limit=2&cursor={page1['next_cursor']}", headers=officer).get_json()
    assert len(page1["items"]) == 2
    assert len(page2["items"]) == 2
    assert page2["next_cursor"] is None
    assert_problem(client.get("/v1/beneficiaries?nam=x", headers=officer), 400, "unknown_parameter")


def _import(client: FlaskClient, headers: dict[str, str], data: bytes, name: str = "ds.csv") -> Any:
    return client.post(
        "/v1/beneficiaries/import",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def _row(serial: int, **overrides: Any) -> list[Any]:
    p = person(serial, **overrides)
    p.setdefault("program", "TCXH")
    p.setdefault("enrolled_from", "2026-01")
    return [p.get(c, "") for c in IMPORT_HEADER]


def test_import_reports_rows_and_is_idempotent(
    client: FlaskClient, program: dict[str, Any], officer: dict[str, str]
):
    rows = [_row(i) for i in range(1, 6)]
    rows.append(_row(6, gender="female", national_id=person(6, gender="male")["national_id"]))
    rows.append(_row(1))  # the same person again
    rows.append(_row(8, program="NOPE"))
    data = csv_file(IMPORT_HEADER, rows, bom=True, crlf=True)
    first = _import(client, officer, data)
    assert first.status_code == 200, first.get_json()
    report = first.get_json()
    assert (report["rows"], report["created"], report["rejected"], report["enrolled"]) == (8, 5, 3, 5)
    assert [(e["row"], e["code"]) for e in report["errors"]] == [
        (7, "national_id_gender_mismatch"),
        (8, "duplicate_in_file"),
        (9, "program_unknown"),
    ]
    second = _import(client, officer, data).get_json()
    assert (second["created"], second["updated"], second["unchanged"], second["enrolled"]) == (0, 0, 5, 0)
    changed = [_row(1, ward="Phường Mới")]
    third = _import(client, officer, csv_file(IMPORT_HEADER, changed)).get_json()
    assert (third["updated"], third["unchanged"]) == (1, 0)


def test_import_xlsx_reports_a_cccd_excel_turned_into_a_number(
    client: FlaskClient, program: dict[str, Any], officer: dict[str, str]
):
    good = _row(1)
    number = _row(2)
    number[0] = int(number[0])  # what Excel does to a column not formatted as text
    data = xlsx_file(IMPORT_HEADER, [good, number, [None] * len(IMPORT_HEADER)], sheets=["Ghi chú"])
    report = _import(client, officer, data, "ds.xlsx").get_json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["code"] == "national_id_leading_zero_lost"
    assert report["errors"][0]["row"] == 3
    assert report["warnings"][0]["code"] == "xlsx_several_sheets"


def test_import_file_problems_write_nothing(client: FlaskClient, officer: dict[str, str], session: Session):
    bad_header = csv_file(["natinal_id", *IMPORT_HEADER[1:]], [_row(1)])
    body = assert_problem(_import(client, officer, bad_header), 422, "column_unknown")
    assert "did you mean 'national_id'" in body["detail"]
    legacy = (",".join(IMPORT_HEADER) + "\n049061000001,Đào Test\n").encode("cp1258")
    assert "UTF-8" in assert_problem(_import(client, officer, legacy), 422, "file_encoding")["detail"]
    assert_problem(
        client.post("/v1/beneficiaries/import", json={"a": 1}, headers=officer), 415, "upload_media_type"
    )
    assert session.scalar(sa.select(sa.func.count()).select_from(Beneficiary)) == 0
