"""Pure rules: CCCD validation, periods, amounts, the batch and item state machines, references."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disbursement import domain
from disbursement.domain import BatchStatus, IllegalTransition, ItemStatus
from tests.disbursement.helpers import cccd

BORN = dt.date(1961, 3, 4)


def codes(problems: list[domain.Problem]) -> list[str]:
    return [p.code for p in problems]


def test_there_are_63_province_codes_from_001_to_096():
    assert len(domain.PROVINCES) == 63
    assert min(domain.PROVINCES) == "001"
    assert max(domain.PROVINCES) == "096"
    assert all(len(c) == 3 and c.isdigit() for c in domain.PROVINCES)
    assert "003" not in domain.PROVINCES  # gaps are real: 003, 005, 007 ... were never assigned


def test_a_cccd_agreeing_with_birth_and_gender_is_valid():
    assert domain.national_id_problems("049061012345", BORN, "male") == []
    assert domain.national_id_problems("049161012345", BORN, "female") == []
    assert domain.national_id_problems("001205000001", dt.date(2005, 1, 1), "male") == []
    assert domain.national_id_problems("096305000001", dt.date(2005, 1, 1), "female") == []


@pytest.mark.parametrize(
    ("value", "gender", "expected"),
    [
        ("049161012345", "male", ["national_id_gender_mismatch"]),
        ("049261012345", "male", ["national_id_century_mismatch"]),
        ("049062012345", "male", ["national_id_birth_year_mismatch"]),
        (
            "049362012345",
            "male",
            [
                "national_id_century_mismatch",
                "national_id_gender_mismatch",
                "national_id_birth_year_mismatch",
            ],
        ),
        ("003061012345", "male", ["national_id_province_unknown"]),
        ("097061012345", "male", ["national_id_province_unknown"]),
        ("04906101234", "male", ["national_id_leading_zero_lost"]),  # 11 digits, 049 once zero-padded
        ("4906101234", "male", ["national_id_leading_zero_lost"]),
        ("99906101234", "male", ["national_id_format"]),  # 11 digits that no lost zero explains
        ("0490610123456", "male", ["national_id_format"]),
        ("04906101234a", "male", ["national_id_format"]),
        ("０４９０６１０１２３４５", "male", ["national_id_format"]),  # fullwidth digits are not digits here
        ("4.9061E+10", "male", ["national_id_exponent"]),
        ("", "male", ["national_id_missing"]),
    ],
)
def test_each_disagreement_has_its_own_code(value: str, gender: str, expected: list[str]):
    assert codes(domain.national_id_problems(value, BORN, gender)) == expected


def test_a_number_cell_always_lost_its_leading_zero_and_is_not_repaired():
    found = domain.national_id_shape("49061012345", from_number=True)
    assert codes(found) == ["national_id_leading_zero_lost"]
    assert "not repaired" in found[0].message
    assert codes(domain.national_id_shape("49061012345.0", from_number=True)) == [
        "national_id_leading_zero_lost"
    ]


@settings(deadline=None)
@given(
    province=st.sampled_from(sorted(domain.PROVINCES)),
    born=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
    gender=st.sampled_from(["male", "female"]),
    serial=st.integers(0, 999_999),
)
def test_every_cccd_built_by_the_rules_is_valid(province: str, born: dt.date, gender: str, serial: int):
    value = cccd(serial, born=born, gender=gender, province=province)
    assert domain.national_id_problems(value, born, gender) == []
    assert domain.national_id_shape(value) == []


@settings(deadline=None)
@given(
    born=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
    gender=st.sampled_from(["male", "female"]),
    serial=st.integers(0, 999_999),
    position=st.integers(3, 5),
    digit=st.integers(0, 9),
)
def test_changing_the_encoded_digits_is_always_caught(
    born: dt.date, gender: str, serial: int, position: int, digit: int
):
    value = cccd(serial, born=born, gender=gender)
    changed = value[:position] + str(digit) + value[position + 1 :]
    problems = domain.national_id_problems(changed, born, gender)
    assert (problems == []) == (changed == value)


@settings(deadline=None)
@given(st.text(max_size=20), st.dates(), st.sampled_from(["male", "female"]))
def test_the_validator_never_crashes_and_codes_are_known(value: str, born: dt.date, gender: str):
    known = {
        "national_id_missing",
        "national_id_format",
        "national_id_leading_zero_lost",
        "national_id_exponent",
        "national_id_province_unknown",
        "national_id_century_mismatch",
        "national_id_gender_mismatch",
        "national_id_birth_year_mismatch",
    }
    try:
        problems = domain.national_id_problems(value, born, gender)
    except ValueError:
        assert not 1900 <= born.year <= 2399  # no century digit exists for that year
        return
    assert set(codes(problems)) <= known
    if not problems:
        assert len(value) == 12
        assert value.isdigit()
        assert value[:3] in domain.PROVINCES


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-11", True),
        ("2026-01", True),
        ("2026-13", False),
        ("2026-00", False),
        ("26-11", False),
        ("2026-1", False),
        ("1999-12", False),
        ("2200-01", False),
        ("２０２６-11", False),
        ("2026-11 ", False),
    ],
)
def test_periods(value: str, ok: bool):
    if ok:
        assert domain.parse_period(value) == value
    else:
        with pytest.raises(ValueError, match="YYYY-MM|month|year"):
            domain.parse_period(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500000", 500_000),
        ("500000.0", 500_000),
        (" 7 ", 7),
        ("-5", -5),
        ("0", 0),
        ("1,500,000", "amount_invalid"),
        ("1.500.000", "amount_invalid"),
        ("1500.5", "amount_not_integer"),
        ("", "amount_missing"),
        ("abc", "amount_invalid"),
        ("５", "amount_invalid"),
    ],
)
def test_amount_cells(text: str, expected: int | str):
    found = domain.parse_amount(text)
    assert (found.code if isinstance(found, domain.Problem) else found) == expected


def test_amount_rules():
    assert domain.amount_problem(500_000, 1_000_000) is None
    assert domain.amount_problem(0, 1_000_000).code == "amount_not_positive"  # type: ignore[union-attr]
    assert domain.amount_problem(-1, None).code == "amount_not_positive"  # type: ignore[union-attr]
    assert domain.amount_problem(1_000_001, 1_000_000).code == "amount_over_cap"  # type: ignore[union-attr]
    assert domain.amount_problem(10**13, None).code == "amount_out_of_range"  # type: ignore[union-attr]


LEGAL_BATCH = {
    ("validating", "ready"),
    ("validating", "invalid"),
    ("validating", "cancelled"),
    ("ready", "approved"),
    ("ready", "cancelled"),
    ("approved", "running"),
    ("approved", "cancelled"),
    ("running", "paused"),
    ("running", "completed"),
    ("running", "completed_with_failures"),
    ("running", "cancelled"),
    ("paused", "running"),
    ("paused", "cancelled"),
    ("completed_with_failures", "running"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(BatchStatus, BatchStatus)))
def test_batch_state_machine_allows_exactly_the_designed_transitions(
    current: BatchStatus, target: BatchStatus
):
    if (current.value, target.value) in LEGAL_BATCH:
        assert domain.batch_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            domain.batch_transition(current, target)
        assert caught.value.current == current
        assert caught.value.target == target
        assert current.value in str(caught.value)


def test_final_batch_statuses_say_so():
    for final in ("invalid", "completed", "cancelled"):
        with pytest.raises(IllegalTransition, match="it is final"):
            domain.batch_transition(final, "running")


LEGAL_ITEM = {
    ("pending", "sending"),
    ("pending", "cancelled"),
    ("sending", "sending"),
    ("sending", "paid"),
    ("sending", "failed"),
    ("sending", "pending"),  # the rail executed nothing (insufficient funds): wait for funding
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ItemStatus, ItemStatus)))
def test_item_state_machine(current: ItemStatus, target: ItemStatus):
    if (current.value, target.value) in LEGAL_ITEM:
        assert domain.item_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            domain.item_transition(current, target)


def test_paid_items_never_change_and_only_live_items_hold_entitlements():
    assert domain.ITEM_TRANSITIONS[ItemStatus.PAID] == frozenset()
    assert {ItemStatus.PENDING, ItemStatus.SENDING, ItemStatus.PAID} == domain.ENTITLED_ITEM_STATUSES


def test_references_fit_bank_fields_and_are_unambiguous():
    refs = {domain.new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        assert len(ref) == 16
        assert ref.isascii()
        assert ref.isalnum()
        assert ref.isupper()
        assert domain.REFERENCE.fullmatch(ref)
        assert not set(ref[1:]) & set("01OI")
