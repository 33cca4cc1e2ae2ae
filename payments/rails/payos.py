"""The payOS Payouts rail: the seam of :mod:`payments.rails.base` over the official SDK.

The client *is* the ``payos`` SDK (``payouts.batch.create``, ``payouts.get``,
``payouts.list(reference_id=)``, ``payouts_account.balance``), built with
``max_retries=0``: chopay's payout protocol decides every retry, and the SDK must never
resend a payout on its own. Settings (``chopay.config``): ``CHOPAY_PAYOUT_URL``,
``CHOPAY_PAYOUT_CLIENT_ID``, ``CHOPAY_PAYOUT_API_KEY``, ``CHOPAY_PAYOUT_CHECKSUM_KEY``;
their defaults point at a local ``chopay fakebank serve`` with its demo credentials.

A chunk is one batch payout whose ``referenceId`` is the chunk reference, also sent as
``x-idempotency-key``, so resending a chunk replays it. Items carry their own references;
the provider never executes one twice.

How payOS answers map to outcomes:

=====================================================  ====================================
transaction ``SUCCEEDED``                               succeeded (``bank_txn_id`` =
                                                        the transaction's ``reference``)
transaction ``FAILED`` + ``errorCode``                  failed, reason from :data:`REASONS`
                                                        (unknown codes: ``rejected``)
transaction ``RECEIVED``, ``PROCESSING``, ``ON_HOLD``   pending
transaction ``CANCELLED``                               failed, ``cancelled``
transaction ``REVERSED``                                returned
envelope ``04`` / HTTP 402 (insufficient balance)       :class:`InsufficientFunds`
HTTP 5xx, 408, 429, envelope ``20``, refused connection :class:`TransientRailError`
timeout or dropped connection on a POST                 :class:`ResponseLost` (pending)
HTTP 401 / envelope ``401``                             :class:`AuthenticationFailed`
other 4xx / envelope codes (``01``, ``03``...)          :class:`RailRefused`
bad ``x-signature``, non-JSON or unknown shape          :class:`RailProtocolError` (pending)
=====================================================  ====================================

Holder lookup uses ``GET /v1/accounts/{bin}/{number}``, which the simulator offers beside
the protocol; a provider without it answers 404 with another code, and :meth:`lookup`
raises :class:`RailUnsupported`. On a real payOS account, looking up a transfer sent in a
batch by its own reference may need the batch's: pass ``chunk_reference`` to
:meth:`status` (the simulator matches either).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
import payos
from payos.types import GetPayoutListParams, PayoutBatchItem, PayoutBatchRequest
from payos.types.v1 import Payout, PayoutTransaction
from pydantic import ValidationError

from payments.rails.base import Holder, Outcome, Reason, SourceBalance, TransferRequest, TransferResult
from payments.rails.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    RailError,
    RailProtocolError,
    RailRefused,
    RailUnsupported,
    ResponseLost,
    TransientRailError,
)

T = TypeVar("T")

REASONS: dict[str, Reason] = {
    "ACCOUNT_CLOSED": Reason.ACCOUNT_CLOSED,
    "ACCOUNT_NOT_FOUND": Reason.ACCOUNT_NOT_FOUND,
    "BANK_NOT_FOUND": Reason.ACCOUNT_NOT_FOUND,
    "ACCOUNT_FROZEN": Reason.ACCOUNT_FROZEN,
    "ACCOUNT_DORMANT": Reason.ACCOUNT_FROZEN,
    "NAME_MISMATCH": Reason.NAME_MISMATCH,
    "LIMIT_EXCEEDED": Reason.LIMIT_EXCEEDED,
}
PENDING_STATES = {"RECEIVED", "PROCESSING", "ON_HOLD"}
INSUFFICIENT_CODES = {"04", "INSUFFICIENT_BALANCE", "INSUFFICIENT_FUNDS"}
TRANSIENT_CODES = {"20"}
MAX_CHUNK = 1_000


class PayosRail:
    """The payOS Payouts API behind the rail seam."""

    name = "payos"
    max_chunk = MAX_CHUNK
    supports_lookup = True

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        api_key: str,
        checksum_key: str,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
        validate_destination: bool = False,
    ) -> None:
        self.validate_destination = validate_destination
        self.client = payos.PayOS(
            client_id=client_id,
            api_key=api_key,
            checksum_key=checksum_key,
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> PayosRail:
        """Build the rail from ``chopay.config.Settings``."""
        return cls(
            base_url=settings.payout_url,
            client_id=settings.payout_client_id,
            api_key=settings.payout_api_key,
            checksum_key=settings.payout_checksum_key,
            **kwargs,
        )

    def close(self) -> None:
        """Close the HTTP connections the SDK holds."""
        self.client.close()

    def send(self, chunk: Sequence[TransferRequest], *, chunk_reference: str) -> list[TransferResult]:
        """Send a chunk as one batch payout; return one result per request, in order."""
        if not 1 <= len(chunk) <= self.max_chunk:
            raise ValueError(f"a chunk holds 1..{self.max_chunk} transfers")
        request = PayoutBatchRequest(
            reference_id=chunk_reference,
            validate_destination=self.validate_destination,
            payouts=[
                PayoutBatchItem(
                    reference_id=t.reference,
                    amount=t.amount,
                    description=t.memo,
                    to_bin=t.bin,
                    to_account_number=t.account_number,
                )
                for t in chunk
            ],
        )
        payout = self._call(
            lambda: self.client.payouts.batch.create(request, idempotency_key=chunk_reference), post=True
        )
        by_ref = {t.reference_id: t for t in payout.transactions}
        return [
            result_of(by_ref[t.reference])
            if t.reference in by_ref
            else TransferResult(t.reference, Outcome.PENDING, message="the answer did not list this transfer")
            for t in chunk
        ]

    def status(self, reference: str, *, chunk_reference: str | None = None) -> TransferResult | None:
        """Return what payOS knows of ``reference``, or None if it has no such transfer."""
        params = GetPayoutListParams(reference_id=chunk_reference or reference, limit=100)
        page = self._call(lambda: self.client.payouts.list(params), post=False)
        for payout in page.data:
            for transaction in payout.transactions:
                if transaction.reference_id == reference:
                    return result_of(transaction)
        return None

    def statuses(self, references: Sequence[str], *, chunk_reference: str) -> dict[str, TransferResult]:
        """Return what payOS knows of the references that the chunk ``chunk_reference`` carried.

        One list call answers for every transfer of that chunk; a reference the answer does
        not show was not in it (ask :meth:`status` about it alone).
        """
        params = GetPayoutListParams(reference_id=chunk_reference, limit=100)
        page = self._call(lambda: self.client.payouts.list(params), post=False)
        wanted = set(references)
        return {
            transaction.reference_id: result_of(transaction)
            for payout in page.data
            for transaction in payout.transactions
            if transaction.reference_id in wanted
        }

    def get(self, payout_id: str) -> Payout:
        """Return one payout by its payOS id (for diagnostics)."""
        return self._call(lambda: self.client.payouts.get(payout_id), post=False)

    def balance(self) -> SourceBalance:
        """Return the payout account's balance."""
        info = self._call(lambda: self.client.payouts_account.balance(), post=False)
        text = info.balance.strip()
        whole, _, fraction = text.partition(".")
        if not whole.lstrip("-").isdigit() or fraction.strip("0"):
            raise RailProtocolError(f"the balance {text!r} is not a whole number of dong")
        return SourceBalance(info.account_number, info.account_name, info.currency, int(whole))

    def lookup(self, bin: str, account_number: str) -> Holder | None:
        """Return who holds a destination account, or None if it does not exist."""
        path = f"/v1/accounts/{bin}/{account_number}"
        try:
            data = self._call(
                lambda: self.client.get(path, cast_to=dict, signature_response="header"), post=False
            )
        except RailRefused as exc:
            if exc.raw_code == "05":
                return None
            if exc.code == "not_found":
                raise RailUnsupported("this payout provider offers no account lookup") from None
            raise
        try:
            return Holder(bin, str(data["accountNumber"]), str(data["accountName"]), str(data["status"]))
        except (KeyError, TypeError):
            raise RailProtocolError("the lookup answer lacks accountNumber, accountName or status") from None

    def _call(self, fn: Callable[[], T], *, post: bool) -> T:
        try:
            return fn()
        except payos.APIError as exc:
            raise classify(exc) from exc
        except payos.ConnectionTimeoutError as exc:
            if post:
                raise ResponseLost(
                    "the request timed out; it may have been executed", code="timeout"
                ) from exc
            raise TransientRailError("the request timed out", code="timeout") from exc
        except payos.ConnectionError as exc:
            raise TransientRailError(
                "could not connect to the payout provider", code="connection_refused"
            ) from exc
        except payos.InvalidSignatureError as exc:
            raise RailProtocolError(
                f"the answer's signature is wrong: {exc}", code="signature_invalid"
            ) from exc
        except httpx.TransportError as exc:
            # The SDK lets these through: the connection broke after the request left.
            if post:
                raise ResponseLost(f"the connection broke before the answer: {exc!r}") from exc
            raise TransientRailError(f"the connection broke: {exc!r}", code="connection_lost") from exc
        except (ValidationError, TypeError, ValueError) as exc:
            raise RailProtocolError(f"the answer is not a payOS payout: {exc}") from exc


def classify(exc: payos.APIError) -> RailError:
    """Map a payOS API error to the rail's exception tree."""
    status = exc.status_code or 0
    code = exc.error_code
    message = exc.error_desc or str(exc)
    if code in INSUFFICIENT_CODES or status == 402:
        return InsufficientFunds(message, raw_code=code)
    if status >= 500 or status in (408, 429) or code in TRANSIENT_CODES:
        return TransientRailError(
            message, code="server_error" if status >= 500 else "retry_later", raw_code=code
        )
    if status == 401 or code == "401":
        return AuthenticationFailed(message, raw_code=code)
    if status == 200 and code is None:
        return RailProtocolError(message)
    if status == 404:
        return RailRefused(message, code="not_found", raw_code=code)
    if status == 409 or code == "03":
        return RailRefused(message, code="reference_conflict", raw_code=code)
    return RailRefused(message, code="request_invalid", raw_code=code)


def result_of(transaction: PayoutTransaction) -> TransferResult:
    """Classify one payOS transaction."""
    state = transaction.state
    common: dict[str, Any] = {
        "raw_state": state,
        "raw_code": transaction.error_code,
        "message": transaction.error_message,
        "provider_id": transaction.id,
    }
    if state == "SUCCEEDED":
        return TransferResult(
            transaction.reference_id,
            Outcome.SUCCEEDED,
            bank_txn_id=transaction.reference or transaction.id,
            **common,
        )
    if state == "REVERSED":
        return TransferResult(
            transaction.reference_id,
            Outcome.RETURNED,
            bank_txn_id=transaction.reference or transaction.id,
            **common,
        )
    if state in PENDING_STATES:
        return TransferResult(transaction.reference_id, Outcome.PENDING, **common)
    if state == "CANCELLED":
        return TransferResult(transaction.reference_id, Outcome.FAILED, reason=Reason.CANCELLED, **common)
    code = transaction.error_code or ""
    if code in INSUFFICIENT_CODES:
        return TransferResult(transaction.reference_id, Outcome.INSUFFICIENT_FUNDS, **common)
    return TransferResult(
        transaction.reference_id, Outcome.FAILED, reason=REASONS.get(code, Reason.REJECTED), **common
    )
