"""Simulator accounts: documented states, seeding, CSV import, strict mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from payments.rails.fakebank import accounts
from payments.rails.fakebank.models import accounts as table
from payments.rails.fakebank.models import open_db

GOOD_CSV = (
    "bin,account_number,holder_name,status,balance\n"
    "970436,0123456789,Nguyen Van Test,active,500000\n"
    "970422,9704220001,Tran Thi Test,closed,0\n"
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_db(tmp_path / "accounts.db")


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


@pytest.mark.parametrize(
    ("number", "state"),
    [
        ("0123499991", "closed"),
        ("0123499992", "dormant"),
        ("0123499993", "frozen"),
        ("0123499994", "not_found"),
        ("0123499995", "name_mismatch"),
        ("0123456789", None),
    ],
)
def test_patterns_are_documented_states(number, state):
    assert accounts.pattern_state(number) == state


@given(st.from_regex(r"\A[0-9]{6,19}\Z"))
def test_fake_names_are_obviously_fake_and_stable(number):
    name = accounts.fake_name(number)
    assert " TEST " in name
    assert name == accounts.fake_name(number)


def test_import_then_reimport_updates(engine: Engine):
    with engine.begin() as conn:
        assert accounts.import_csv(conn, GOOD_CSV) == 2
        assert accounts.import_csv(conn, GOOD_CSV.replace("500000", "700000")) == 2
        found = accounts.get(conn, "970436", "0123456789")
    assert found is not None
    assert (found.holder_name, found.status, found.balance) == ("Nguyen Van Test", "active", 700_000)
    assert count(engine) == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("bin,account,holder_name,status,balance\n", "line 1: the header must be"),
        (GOOD_CSV + "970436,0123456788,Le Test,asleep,0\n", "line 4: status must be one of"),
        (GOOD_CSV + "970436,0123456788,Le Test,active,1.5\n", "line 4: balance"),
        (GOOD_CSV + "970436,0123456788,Le Test,active,-5\n", "line 4: balance must not be negative"),
        (GOOD_CSV + "97043,0123456788,Le Test,active,0\n", "line 4: bin must be 6 digits"),
        (GOOD_CSV + "970436,01 23,Le Test,active,0\n", "line 4: account_number"),
        (GOOD_CSV + "970436,0123456788,,active,0\n", "line 4: holder_name"),
        (GOOD_CSV + "970436,0123456788,Le Test\n", "line 4: expected 5 columns"),
    ],
)
def test_a_bad_row_names_its_line_and_imports_nothing(engine: Engine, text, words):
    with pytest.raises(accounts.AccountImportError, match=words), engine.begin() as conn:
        accounts.import_csv(conn, text)
    assert count(engine) == 0


def test_seeding_opens_fake_accounts_with_every_documented_state(engine: Engine):
    with engine.begin() as conn:
        made = accounts.seed(conn, 48, seed=7)
    assert len({a.number for a in made}) == 48
    assert {a.status for a in made} == {"active", "closed", "dormant", "frozen"}
    assert any(accounts.pattern_state(a.number) == "name_mismatch" for a in made)
    assert all(" TEST " in a.holder_name for a in made)
    with engine.begin() as conn:
        again = accounts.seed(conn, 48, seed=7)
    assert [a.number for a in again] == [a.number for a in made]


def test_pattern_accounts_open_themselves_unless_strict(engine: Engine):
    keys = [
        ("970436", "0123456789"),
        ("970436", "0123499991"),
        ("970436", "0123499994"),
        ("999999", "0123456789"),
    ]
    with engine.begin() as conn:
        assert accounts.resolve(conn, keys, strict=True) == {}
        found = accounts.resolve(conn, keys, strict=False)
    assert set(found) == {keys[0], keys[1]}
    assert found[keys[1]].status == "closed"
