"""What a verified notification says, reduced to one Incoming whatever its format."""

from __future__ import annotations

import datetime as dt

from merchants.intake.formats import Incoming
from payments.rails import webhooks as wh


def test_the_content_hash_is_stable_across_releases() -> None:
    """Stored notifications keep their hash: a redelivery after an upgrade is still a redelivery."""
    incoming = Incoming(
        connector="bank-a",
        format="chopay",
        dedup_key="FT1",
        bank_txn_id="FT1",
        direction="in",
        bin="970436",
        account_number="9000000001",
        amount=50_000,
        description="thanh toán CP7K2M9QXA",
        code=None,
        payer_name="NGUYEN VAN KHACH TEST",
        occurred_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=wh.VIETNAM),
        connector_txn_id="42",
    )
    assert incoming.content_sha256 == "58912e9b807b4f9154a724937a24cdedb3fa13db04bef619716e10c8d3bddfac"
    moved = Incoming(**{**incoming.__dict__, "amount": 50_001})
    assert moved.content_sha256 != incoming.content_sha256
