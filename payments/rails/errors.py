"""Errors a bank rail raises, each classified for the payout protocol.

Exception tree::

    RailError                      code, outcome, raw_code, message
    ├── TransientRailError         outcome "transient": a timeout, a 5xx, a refused connection,
    │   │                          a rate limit; retry with backoff (the rail is idempotent)
    │   └── ResponseLost           the request may have been executed and the answer was lost
    │                              (dropped connection, timeout after sending); outcome
    │                              "pending": resolve with ``status()`` before anything else
    ├── InsufficientFunds          outcome "insufficient_funds": the source account cannot cover
    │                              the chunk; nothing in it was executed; pause, fund, resume
    ├── RailRefused                outcome "failed": the provider refused the request itself
    │   │                          (invalid field, a reference reused with another body);
    │   │                          the same request will never succeed
    │   └── AuthenticationFailed   the credentials are wrong or revoked
    ├── RailProtocolError          outcome "pending": the answer broke the protocol (bad
    │                              signature, not JSON, unknown shape); it cannot be trusted,
    │                              so the outcome is unknown until ``status()`` says
    └── RailUnsupported            the rail does not offer this operation (e.g. holder lookup)

Outcomes of single transfers (succeeded, failed with a reason, pending, returned) are values,
not exceptions: see :class:`payments.rails.base.TransferResult`.
"""

from __future__ import annotations

from typing import ClassVar

from payments.rails.base import Outcome


class RailError(Exception):
    """A call to a bank rail that did not give per-transfer outcomes."""

    code: ClassVar[str] = "rail_error"
    outcome: ClassVar[Outcome] = Outcome.PENDING

    def __init__(self, message: str, *, code: str | None = None, raw_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.raw_code = raw_code

    def __str__(self) -> str:
        raw = f" (provider code {self.raw_code})" if self.raw_code else ""
        return f"{self.code}: {self.message}{raw}"


class TransientRailError(RailError):
    code = "transient"
    outcome = Outcome.TRANSIENT


class ResponseLost(TransientRailError):
    code = "response_lost"
    outcome = Outcome.PENDING


class InsufficientFunds(RailError):
    code = "insufficient_funds"
    outcome = Outcome.INSUFFICIENT_FUNDS


class RailRefused(RailError):
    code = "request_refused"
    outcome = Outcome.FAILED


class AuthenticationFailed(RailRefused):
    code = "authentication_failed"


class RailProtocolError(RailError):
    code = "protocol_error"
    outcome = Outcome.PENDING


class RailUnsupported(RailError):
    code = "unsupported"
    outcome = Outcome.FAILED
