"""The bank rail seam: what payout execution needs from any payout provider.

A rail sends chunks of transfers, tells the status of a reference, gives the source
account's balance and, when the provider offers it, looks up who holds a destination
account. :class:`payments.rails.payos.PayosRail` (the payOS Payouts API, which the bank
simulator speaks too) is the first implementation; another provider is another class with
these four methods, and nothing in disbursement changes.

The contract every implementation keeps:

* **Idempotent on the reference.** ``TransferRequest.reference`` is stable across retries;
  sending it again (alone or in another chunk) never executes it twice. The same reference
  with different content is refused (:class:`~payments.rails.errors.RailRefused`).
* **Classified outcomes.** Each :class:`TransferResult` carries an :class:`Outcome`:

  ====================== ===============================================================
  ``succeeded``          paid; ``bank_txn_id`` is the bank's transaction id, the same id
                         the account statement shows (``line_id``)
  ``failed``             final; ``reason`` is a :class:`Reason` and ``raw_code`` keeps
                         the provider's own code
  ``pending``            accepted but not final (RECEIVED, PROCESSING, ON_HOLD), or the
                         answer was lost: ask :meth:`Rail.status` later
  ``returned``           paid, then returned by the receiving bank (REVERSED); the money
                         is back on the source account; ``bank_txn_id`` is the payout's
  ``transient``          the request did not reach a decision (timeout, 5xx, refused
                         connection): retry with backoff
  ``insufficient_funds`` the source cannot cover it; nothing was executed: pause, never
                         fail the item
  ====================== ===============================================================

  Per-transfer outcomes come back as values from :meth:`Rail.send`; failures of the call
  as a whole are exceptions from :mod:`payments.rails.errors`, each with the ``outcome``
  it means for every transfer of the chunk.
* **Unknown is resolved, never guessed.** After ``pending``/``transient``/an exception,
  call :meth:`Rail.status` for each reference before sending it again; ``None`` means the
  provider has no transfer for it, so sending is safe (and still idempotent).

References are uppercase ASCII letters and digits, at most :data:`REFERENCE_MAX` characters,
so that they fit an MT940 ``:61:`` customer reference and bank memo fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from qr.builder import MAX_AMOUNT
from qr.text import fold

REFERENCE_MAX = 16
REFERENCE_RE = re.compile(rf"^[A-Z0-9]{{1,{REFERENCE_MAX}}}$")
MEMO_MAX = 100
AMOUNT_MIN = 1
AMOUNT_MAX = MAX_AMOUNT


class Outcome(StrEnum):
    """What one transfer's attempt came to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"
    RETURNED = "returned"
    TRANSIENT = "transient"
    INSUFFICIENT_FUNDS = "insufficient_funds"


class Reason(StrEnum):
    """Why a transfer failed for good (the stable codes disbursement records)."""

    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_FROZEN = "account_frozen"  # frozen or dormant: the bank will not credit it
    NAME_MISMATCH = "name_mismatch"
    LIMIT_EXCEEDED = "limit_exceeded"
    CANCELLED = "cancelled"  # cancelled at the provider before it executed
    REJECTED = "rejected"  # any other final refusal; raw_code says which


@dataclass(frozen=True)
class TransferRequest:
    """One payout to send: a stable reference, an amount in dong and a destination."""

    reference: str
    amount: int
    bin: str
    account_number: str
    memo: str

    def __post_init__(self) -> None:
        if not REFERENCE_RE.match(self.reference):
            raise ValueError(f"reference must be 1..{REFERENCE_MAX} uppercase letters and digits")
        if type(self.amount) is not int or not AMOUNT_MIN <= self.amount <= AMOUNT_MAX:
            raise ValueError(f"amount must be an integer {AMOUNT_MIN}..{AMOUNT_MAX} dong")
        if not (len(self.bin) == 6 and self.bin.isascii() and self.bin.isdigit()):
            raise ValueError("bin must be 6 digits")
        if not (1 <= len(self.account_number) <= 19 and self.account_number.isascii()):
            raise ValueError("account_number must be 1..19 ASCII characters")
        if len(self.memo) > MEMO_MAX:
            raise ValueError(f"memo must be at most {MEMO_MAX} characters")


@dataclass(frozen=True)
class TransferResult:
    """The provider's answer about one reference."""

    reference: str
    outcome: Outcome
    bank_txn_id: str | None = None
    reason: Reason | None = None
    raw_code: str | None = None
    raw_state: str | None = None
    message: str | None = None
    provider_id: str | None = None

    @property
    def final(self) -> bool:
        """Tell whether nothing more will happen to this transfer at the provider."""
        return self.outcome in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.RETURNED)


@dataclass(frozen=True)
class SourceBalance:
    """The account payouts are paid from, with its available balance in dong."""

    account_number: str
    account_name: str
    currency: str
    balance: int


@dataclass(frozen=True)
class Holder:
    """Who holds a destination account, and whether it can receive money."""

    bin: str
    account_number: str
    holder_name: str
    status: str  # active | closed | dormant | frozen

    def name_matches(self, expected: str) -> bool:
        """Compare with an expected name, ignoring case, diacritics, spacing and punctuation."""
        return fold(self.holder_name) == fold(expected)


@runtime_checkable
class Rail(Protocol):
    """A payout provider behind the seam."""

    name: str
    max_chunk: int
    supports_lookup: bool

    def send(self, chunk: Sequence[TransferRequest], *, chunk_reference: str) -> list[TransferResult]:
        """Send a chunk; return one result per request, in the same order."""
        ...

    def status(self, reference: str, *, chunk_reference: str | None = None) -> TransferResult | None:
        """Return what the provider knows of ``reference``, or None if it has no transfer."""
        ...

    def balance(self) -> SourceBalance:
        """Return the source account's available balance."""
        ...

    def lookup(self, bin: str, account_number: str) -> Holder | None:
        """Return a destination's holder, None if it does not exist (RailUnsupported if not offered)."""
        ...
