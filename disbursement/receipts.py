"""Receipts a beneficiary can check: a short code per paid item, proven in the signed ledger.

Every paid item gets a ``receipt_code`` (12 characters of the reference alphabet, shown as
``ABCD-EFGH-JKLM``) in the same transaction that records its payment and ledger posting; the
code is in the leaf's metadata too (``receipt``), so the signed log vouches for it. ``GET
/v1/receipts/{code}`` needs no account: it shows the program, the period, the amount, the
masked account, the paid time, the bank transaction id, and the item's ledger entry with its
inclusion proof in the latest signed checkpoint (and that checkpoint's signed note), so that
anyone can check it offline with the verifier key. Nothing else about the person is shown: no
name, no national id, no phone, no full account number.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from disbursement import domain
from disbursement.errors import InvalidInput, ReceiptNotFound
from disbursement.models import ITEM_ACCOUNT, PayoutItem, Program
from disbursement.services.registry import masked
from payments.ledger import tree
from payments.ledger.domain import public_id
from payments.ledger.models import Entry


def parse(text: str) -> str:
    """Return the receipt code ``text`` names, or raise a 422 that says what one looks like."""
    code = domain.parse_receipt(text)
    if code is None:
        raise InvalidInput(
            "A receipt code is 12 letters and digits, as printed: ABCD-EFGH-JKLM.",
            errors={"path": {"code": ["receipt_code_invalid"]}},
        )
    return code


def lookup(session: Session, keys: DataKeys, text: str) -> dict[str, Any]:
    """Return what a receipt proves: the payment and its ledger entry with an inclusion proof."""
    code = parse(text)
    item = session.scalar(
        sa.select(PayoutItem).where(PayoutItem.receipt_code == code, PayoutItem.status == "paid")
    )
    if item is None:
        raise ReceiptNotFound(f"No payment has the receipt code {domain.format_receipt(code)}.")
    program = session.get(Program, item.program_id)
    assert program is not None
    ledger: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    if item.ledger_transaction_id is not None:
        index = session.scalar(sa.select(Entry.idx).where(Entry.transaction_id == item.ledger_transaction_id))
        latest = tree.latest_checkpoint(session)
        ledger = {"transaction": public_id(item.ledger_transaction_id), "index": index, "proof": None}
        if latest is not None:
            checkpoint = {"size": latest.size, "note": latest.note, "created_at": latest.created_at}
            if index is not None and index < latest.size:
                ledger["proof"] = tree.inclusion(session, index, latest.size)
    return {
        "receipt_code": domain.format_receipt(code),
        "program": {"code": program.code, "name": program.name},
        "period": item.period,
        "amount": item.amount,
        "currency": "VND",
        "bin": item.bin,
        "account_number": masked(keys.decrypt(item.account_number, ITEM_ACCOUNT.context)),
        "paid_at": item.paid_at,
        "bank_txn_id": item.bank_txn_id,
        "reference": item.reference,
        "sealed": bool(ledger and ledger["proof"]),
        "ledger": ledger,
        "checkpoint": checkpoint,
    }
