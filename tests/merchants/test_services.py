"""The lookups the intake relies on, tested on the service layer without HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys, data_keys
from chopay.db import utcnow
from chopay.users import create_user
from merchants import domain
from merchants.errors import IntentStateConflict, MerchantExists, MerchantNotFound
from merchants.models import PHONE
from merchants.services import intents, registry
from tests.merchants.conftest import BIN, vendor


@pytest.fixture
def keys(app: Flask) -> Iterator[DataKeys]:
    with app.app_context():
        yield data_keys(app)


def test_create_derives_qr_fields_and_encrypts_the_phone(session: Session, keys: DataKeys) -> None:
    m = registry.create(session, keys, vendor(1, display_name="Sạp cá Đỗ Thị Thử"))
    assert domain.PUBLIC_ID_RE.fullmatch(m.public_id)
    assert m.qr_name == "Sap ca Do Thi Thu"
    assert m.city == "Da Nang"
    assert m.mcc == "5499"
    assert m.phone is not None
    assert "0900000001" not in m.phone
    assert keys.decrypt(m.phone, PHONE.context) == "0900000001"
    assert registry.view(keys, m)["phone"] == "*******001"
    assert [c.to_status for c in registry.history(session, m)] == ["active"]


def test_find_active_by_account_skips_suspended_and_other_accounts(session: Session, keys: DataKeys) -> None:
    m = registry.create(session, keys, vendor(1))
    assert registry.find_active_by_account(session, BIN, m.account_number) is m
    assert registry.find_active_by_account(session, BIN, "123456789") is None
    assert registry.find_active_by_account(session, "970415", m.account_number) is None
    registry.change_status(session, m, "suspended", reason="kiểm tra")
    assert registry.find_active_by_account(session, BIN, m.account_number) is None


def test_one_active_merchant_per_account(session: Session, keys: DataKeys) -> None:
    first = registry.create(session, keys, vendor(1))
    with pytest.raises(MerchantExists) as caught:
        registry.create(session, keys, vendor(2, account_number=first.account_number))
    assert caught.value.extra["existing"]["id"] == first.public_id
    registry.change_status(session, first, "closed")
    second = registry.create(session, keys, vendor(2, account_number=first.account_number))
    assert registry.find_active_by_account(session, BIN, first.account_number) is second


def test_get_visible_hides_other_merchants_like_missing_ones(session: Session, keys: DataKeys) -> None:
    a = registry.create(session, keys, vendor(1))
    b = registry.create(session, keys, vendor(2))
    user_a = create_user(session, name="Sạp A", role="merchant", merchant_id=a.id).user
    officer = create_user(session, name="Cán bộ", role="officer").user
    assert registry.get_visible(session, a.public_id, user=user_a) is a
    with pytest.raises(MerchantNotFound) as foreign:
        registry.get_visible(session, b.public_id, user=user_a)
    with pytest.raises(MerchantNotFound) as missing:
        registry.get_visible(session, "m_2222222222", user=user_a)
    assert str(foreign.value) == f"No merchant with id {b.public_id}."
    assert str(missing.value) == "No merchant with id m_2222222222."
    assert registry.get_visible(session, b.public_id, user=officer) is b


@pytest.mark.parametrize(
    ("amount", "status"), [(50_000, "paid"), (49_999, "underpaid"), (60_000, "overpaid")]
)
def test_settle_intent(session: Session, keys: DataKeys, amount: int, status: str) -> None:
    m = registry.create(session, keys, vendor(1))
    intent = intents.create_intent(session, m, amount=50_000, memo="rau cải")
    assert domain.REFERENCE_RE.fullmatch(intent.reference)
    found = intents.find_open_intent(session, intent.reference.lower())
    assert found is intent
    at = utcnow()
    assert intents.settle_intent(session, intent, amount, at) == status
    assert (intent.status, intent.paid_amount, intent.settled_at) == (status, amount, at)
    assert intents.find_open_intent(session, intent.reference) is None
    with pytest.raises(IntentStateConflict):
        intents.settle_intent(session, intent, amount, at)


def test_expire_due_expires_only_open_intents_past_expiry(session: Session, keys: DataKeys) -> None:
    m = registry.create(session, keys, vendor(1))
    late = intents.create_intent(session, m, amount=10_000)
    fresh = intents.create_intent(session, m, amount=10_000)
    paid = intents.create_intent(session, m, amount=10_000)
    intents.settle_intent(session, paid, 10_000, utcnow())
    late.expires_at = utcnow() - dt.timedelta(seconds=1)
    paid.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    assert intents.expire_due(session) == 1
    session.expire_all()
    assert (late.status, fresh.status, paid.status) == ("expired", "open", "paid")
