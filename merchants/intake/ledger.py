"""The chart of accounts of merchant payments, and the posting of one payment.

The buyer's money goes straight into the vendor's own bank account: chopay never holds it.
The ledger therefore records what chopay has seen arrive, per merchant:

========================  =========  ===========================================================
account                   kind       meaning
========================  =========  ===========================================================
``merchant:<id>:bank``    asset      the vendor's bank account, as far as notifications show it
``merchant:<id>:sales``   income     what buyers paid the vendor through chopay's QR codes
========================  =========  ===========================================================

A payment debits ``bank`` and credits ``sales`` by its amount (``<id>`` is the merchant's
public id). Its ledger transaction is keyed ``intake:<connector>:<bank transaction id>``
(the dedup key: SePay's ``id`` for SePay), so a redelivery can never post twice, and carries
the references reconciliation needs: ``bank_txn_id``, ``connector``, ``merchant``, ``intent``
(the reference, when an intent was matched) and ``connector_txn_id`` (the feed's own id, when
it differs from the bank's).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger import services as ledger
from payments.ledger.domain import Posting, Recorded, TransactionSpec
from payments.ledger.errors import InvalidTransaction
from payments.ledger.models import Account

KIND = "merchant.payment"


def bank_account(merchant: str) -> str:
    """Return the code of a merchant's bank-account (asset) ledger account."""
    return f"merchant:{merchant}:bank"


def sales_account(merchant: str) -> str:
    """Return the code of a merchant's sales (income) ledger account."""
    return f"merchant:{merchant}:sales"


def ledger_key(connector: str, dedup_key: str) -> str:
    """Return the idempotency key of the ledger transaction of one notification."""
    return f"intake:{connector}:{dedup_key}"


def open_accounts(session: Session, merchant: str) -> None:
    """Open the merchant's two accounts if they do not exist yet (one query when they do)."""
    wanted = {bank_account(merchant): "asset", sales_account(merchant): "income"}
    found = set(session.scalars(sa.select(Account.code).where(Account.code.in_(wanted))))
    for code, kind in wanted.items():
        if code not in found:
            ledger.ensure_account(session, code=code, kind=kind)


def post_payment(
    session: Session,
    *,
    merchant: str,
    connector: str,
    dedup_key: str,
    bank_txn_id: str,
    amount: int,
    occurred_at: dt.datetime,
    reference: str | None,
    connector_txn_id: str | None,
) -> Recorded:
    """Post one payment in the caller's transaction; a replayed key returns the first posting.

    A merchant's accounts exist from its first payment on, so the post is tried first and the
    accounts opened only when it finds them missing (the book refuses before writing anything).
    """
    metadata: dict[str, str] = {"bank_txn_id": bank_txn_id, "connector": connector, "merchant": merchant}
    if reference is not None:
        metadata["intent"] = reference
    if connector_txn_id is not None and connector_txn_id != bank_txn_id:
        metadata["connector_txn_id"] = connector_txn_id
    memo = f"QR payment {reference}" if reference else "Static QR payment"
    spec = TransactionSpec(
        idempotency_key=ledger_key(connector, dedup_key),
        kind=KIND,
        memo=memo,
        postings=(Posting(bank_account(merchant), amount), Posting(sales_account(merchant), -amount)),
        occurred_at=occurred_at,
        metadata=metadata,
    )
    try:
        return ledger.post(session, spec)
    except InvalidTransaction as exc:
        if exc.code != "account_unknown":
            raise
    open_accounts(session, merchant)
    return ledger.post(session, spec)
