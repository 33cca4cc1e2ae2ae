"""Errors of the ledger.

Exception tree::

    LedgerError (chopay.errors.ChopayError)
    ├── InvalidTransaction      422  postings_too_few | postings_too_many | posting_zero |
    │                                postings_unbalanced | amount_out_of_range | metadata_invalid |
    │                                account_unknown | account_code_invalid | currency_mismatch |
    │                                field_invalid
    ├── InsufficientBalance     422  balance_negative: an account that forbids it would go below zero
    ├── BalanceOutOfRange       422  balance_out_of_range: a balance would pass MAX_BALANCE
    ├── AccountExists           409  account_exists
    ├── TransactionKeyConflict  409  idempotency_key_reused: same key, different content
    ├── AlreadyReversed         409  already_reversed
    ├── TransactionNotFound     404  transaction_not_found
    ├── AccountNotFound         404  account_not_found
    ├── EntryNotFound           404  entry_not_found: index or tree size beyond the log
    ├── SigningKeyMissing       503  signing_key_missing
    └── CorruptEntry            500  ledger_corrupt: stored rows no longer form a valid leaf
"""

from __future__ import annotations

from chopay.errors import ChopayError, Conflict, NotFound, Unprocessable


class LedgerError(ChopayError):
    """Base class of ledger errors."""


class InvalidTransaction(LedgerError, Unprocessable):
    code = "transaction_invalid"


class InsufficientBalance(LedgerError, Unprocessable):
    code = "balance_negative"


class BalanceOutOfRange(LedgerError, Unprocessable):
    code = "balance_out_of_range"


class AccountExists(LedgerError, Conflict):
    code = "account_exists"


class TransactionKeyConflict(LedgerError, Conflict):
    code = "idempotency_key_reused"


class AlreadyReversed(LedgerError, Conflict):
    code = "already_reversed"


class TransactionNotFound(LedgerError, NotFound):
    code = "transaction_not_found"


class AccountNotFound(LedgerError, NotFound):
    code = "account_not_found"


class EntryNotFound(LedgerError, NotFound):
    code = "entry_not_found"


class SigningKeyMissing(LedgerError):
    status = 503
    code = "signing_key_missing"
    title = "Ledger signing key missing"


class CorruptEntry(LedgerError):
    status = 500
    code = "ledger_corrupt"
    title = "Ledger integrity failure"
