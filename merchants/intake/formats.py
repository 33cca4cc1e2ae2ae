"""Verify a notification in its format and reduce it to one :class:`Incoming`.

Each format is checked with :mod:`payments.rails.webhooks`, the implementation the bank
simulator signs with: the signature (or API key) first, then the body. What the three formats
say is then the same thing: a credit (or, for SePay, a debit) of ``amount`` to an account.

* ``chopay``: ``bank_txn_id`` is the dedup key and the bank transaction id; the BIN is given.
* ``sepay``: SePay's ``id`` is the dedup key; the bank transaction id is ``referenceCode``
  (SePay's id when there is none); the BIN is the ``gateway``'s in the bank directory, else
  the connector's; the text searched for a reference is ``content`` and ``code``.
* ``payos``: ``data.reference`` is the dedup key and the bank transaction id; the BIN is the
  connector's. payOS's webhook says whether the payment went through: ``code`` (its error
  code) and ``data.code`` are ``"00"`` and ``success`` is true for a payment made, as payOS's
  webhook reference documents. Anything else is a payment that was not made: it is kept with
  ``sender_status`` (the code and description payOS gave) and is never paid to anyone.

``content_sha256`` hashes what the notification says (not its bytes, nor its signature, which
changes with every delivery of a chopay-format notification): a redelivery has the same hash,
a different notification under a reused id does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, fields
from typing import Any

from merchants.intake.connectors import Connector, hash_key
from payments.ledger.domain import EARLIEST, LATEST
from payments.rails import webhooks as wh
from qr import banks

DEDUP_KEY = re.compile(r"[!-~]{1,100}")


@dataclass(frozen=True)
class Incoming:
    """A verified notification, whatever its format."""

    connector: str
    format: str
    dedup_key: str
    bank_txn_id: str
    direction: str
    bin: str | None
    account_number: str
    amount: int
    description: str
    code: str | None
    payer_name: str | None
    occurred_at: dt.datetime
    connector_txn_id: str | None = None
    sender_status: str | None = None  # why the sender reports this payment as not made

    @property
    def failed(self) -> bool:
        """Tell whether the sender reports the payment as not made (it is no payment)."""
        return self.sender_status is not None

    @property
    def content_sha256(self) -> str:
        """Hash what the notification says, to tell a redelivery from a reused id."""
        # The fields by name, as dataclasses.asdict would give them, without its deep copies.
        body = {name: getattr(self, name) for name in _FIELDS}
        body["occurred_at"] = self.occurred_at.astimezone(dt.UTC).isoformat()
        if body["sender_status"] is None:
            del body["sender_status"]  # the hash of every payment made stays what it always was
        encoded = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


_FIELDS = tuple(f.name for f in fields(Incoming))


def _key(value: str, field: str) -> str:
    if not DEDUP_KEY.fullmatch(value):
        raise wh.WebhookError("payload_malformed", f"{field}: 1 to 100 printable ASCII characters, no spaces")
    return value


def chopay(connector: Connector, body: bytes, signature: str | None, now: float | None = None) -> Incoming:
    """Verify and parse a chopay-format notification."""
    wh.verify_chopay(body, signature, connector.secrets, now=now)
    note = wh.parse_chopay(body)
    return Incoming(
        connector=connector.name,
        format="chopay",
        dedup_key=_key(note.bank_txn_id, "bank_txn_id"),
        bank_txn_id=note.bank_txn_id,
        direction="in",
        bin=note.bin,
        account_number=note.account_number,
        amount=note.amount,
        description=note.description,
        code=None,
        payer_name=note.payer_name,
        occurred_at=note.occurred_at,
    )


def sepay(connector: Connector, body: bytes, authorization: str | None) -> Incoming:
    """Check the API key (against the stored hashes) and parse SePay's webhook JSON."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    # Hash the presented key, so that the comparison is against what is stored.
    hashed = f"{scheme} {hash_key(presented.strip())}" if presented.strip() else authorization
    wh.verify_sepay(hashed, connector.secrets)
    note = wh.parse_sepay(body)
    bank = banks.find(note.gateway)
    reference = note.reference_code or str(note.id)
    return Incoming(
        connector=connector.name,
        format="sepay",
        dedup_key=_key(note.dedup_key, "id"),
        bank_txn_id=_key(reference, "referenceCode"),
        direction=note.transfer_type,
        bin=bank.bin if bank is not None and bank.bin else connector.bin,
        account_number=note.account_number,
        amount=note.transfer_amount,
        description=note.content or note.description,
        code=note.code,
        payer_name=None,
        occurred_at=note.transaction_date,
        connector_txn_id=str(note.id),
    )


PAYOS_SUCCESS = "00"
SENDER_STATUS_LIMIT = 200


def payos_failure(envelope: dict[str, Any], note: wh.PayosNotification) -> str | None:
    """Return what payOS says of a payment it reports as not made, or None for a payment made."""
    code, desc = str(envelope.get("code", "")), str(envelope.get("desc", ""))
    if code == PAYOS_SUCCESS and note.code == PAYOS_SUCCESS and envelope.get("success") is True:
        return None
    if code == PAYOS_SUCCESS:
        code, desc = note.code, note.desc
    reported = f"{code}: {desc}"
    if code == PAYOS_SUCCESS:  # only ``success`` says the payment failed
        reported += f" (success: {json.dumps(envelope.get('success'))})"
    return reported[:SENDER_STATUS_LIMIT]


def payos(connector: Connector, body: bytes) -> Incoming:
    """Verify a payOS webhook as the payOS SDK does, and take its data."""
    note = wh.verify_payos(body, connector.secrets)
    envelope = json.loads(body)  # verified above: a JSON object with code, desc and success
    return Incoming(
        connector=connector.name,
        format="payos",
        dedup_key=_key(note.dedup_key, "data.reference"),
        bank_txn_id=note.reference,
        direction="in",
        bin=connector.bin,
        account_number=note.account_number,
        amount=note.amount,
        description=note.description,
        code=None,
        payer_name=note.counter_account_name or None,
        occurred_at=note.transaction_date_time,
        connector_txn_id=str(note.order_code),
        sender_status=payos_failure(envelope, note),
    )


def field_errors(error: wh.WebhookError) -> dict[str, Any]:
    """Return a WebhookError's message as field errors: ``{"json": {field: [message]}}``."""
    field, sep, message = error.message.partition(": ")
    if not sep or " " in field:
        return {"json": {"_schema": [error.message]}}
    return {"json": {field: [message]}}


def check_time(incoming: Incoming) -> Incoming:
    """Refuse a transfer time no bank could report (before 2000, from 2200 on)."""
    if not EARLIEST <= incoming.occurred_at < LATEST:
        raise wh.WebhookError("payload_malformed", "occurred_at: must lie between 2000 and 2200")
    return incoming
