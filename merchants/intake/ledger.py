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


def payment_spec(
    *,
    merchant: str,
    connector: str,
    dedup_key: str,
    bank_txn_id: str,
    amount: int,
    occurred_at: dt.datetime,
    reference: str | None,
    connector_txn_id: str | None,
) -> TransactionSpec:
    """Return the ledger transaction of one payment."""
    metadata: dict[str, str] = {"bank_txn_id": bank_txn_id, "connector": connector, "merchant": merchant}
    if reference is not None:
        metadata["intent"] = reference
    if connector_txn_id is not None and connector_txn_id != bank_txn_id:
        metadata["connector_txn_id"] = connector_txn_id
    memo = f"QR payment {reference}" if reference else "Static QR payment"
    return TransactionSpec(
        idempotency_key=ledger_key(connector, dedup_key),
        kind=KIND,
        memo=memo,
        postings=(Posting(bank_account(merchant), amount), Posting(sales_account(merchant), -amount)),
        occurred_at=occurred_at,
        metadata=metadata,
    )


def post_payment(session: Session, spec: TransactionSpec, merchant: str) -> Recorded:
    """Post one payment's ``spec`` in the caller's transaction; a replayed key returns the first posting.

    A merchant's accounts exist from its first payment on, so the post is tried first and the
    accounts opened only when it finds them missing (the book refuses before writing anything).
    """
    try:
        return ledger.post(session, spec)
    except InvalidTransaction as exc:
        if exc.code != "account_unknown":
            raise
    open_accounts(session, merchant)
    return ledger.post(session, spec)


def post_payments(session: Session, specs: list[tuple[TransactionSpec, str]]) -> list[Recorded]:
    """Post many payments' specs (each with its merchant) together, in order; return their records.

    The payments of merchants that have accounts already cost one statement together; a first
    payment opens its merchant's accounts and is posted after them. A refusal other than a
    missing account raises: a payment's posting has no rule that it can break.
    """
    out: list[Recorded | None] = [None] * len(specs)
    retry: list[int] = []
    for i, outcome in enumerate(ledger.post_each(session, [spec for spec, _ in specs])):
        if isinstance(outcome, Recorded):
            out[i] = outcome
        elif isinstance(outcome, InvalidTransaction) and outcome.code == "account_unknown":
            retry.append(i)
        else:
            raise outcome
    for i in retry:
        spec, merchant = specs[i]
        out[i] = post_payment(session, spec, merchant)
    return [r for r in out if r is not None]
