"""Errors of merchants.

Exception tree::

    MerchantError (chopay.errors.ChopayError)
    ├── InvalidInput             422  a field breaks a rule; ``errors`` maps fields to messages
    │                                 (bin_unknown, bank_not_receiving, qr_name_not_ascii,
    │                                 amount_out_of_range, expiry_in_past, ...)
    ├── FileRejected             422  an import file cannot be read as a whole (the codes of
    │                                 disbursement.files: file_empty, column_missing, xlsx_unreadable, ...)
    ├── MerchantNotFound         404  merchant_not_found: no such id, or not the caller's own
    ├── MerchantExists           409  merchant_exists: that (bin, account) has an active merchant,
    │                                 named in ``existing``
    ├── StatusConflict           409  status_transition: e.g. a closed merchant cannot reopen
    ├── MerchantNotActive        422  merchant_not_active: a suspended or closed merchant takes no
    │                                 new intent
    ├── MerchantGone             410  merchant_suspended | merchant_closed: its QR is no longer served
    ├── IntentNotFound           404  intent_not_found
    └── IntentStateConflict      409  intent_not_open: only an open intent can be cancelled
"""

from __future__ import annotations

from chopay.errors import ChopayError, Conflict, Gone, NotFound, Unprocessable


class MerchantError(ChopayError):
    """Base class of merchant errors."""


class InvalidInput(MerchantError, Unprocessable):
    code = "validation_failed"


class FileRejected(MerchantError, Unprocessable):
    code = "file_rejected"


class MerchantNotFound(MerchantError, NotFound):
    code = "merchant_not_found"


class MerchantExists(MerchantError, Conflict):
    code = "merchant_exists"


class StatusConflict(MerchantError, Conflict):
    code = "status_transition"


class MerchantNotActive(MerchantError, Unprocessable):
    code = "merchant_not_active"


class MerchantGone(MerchantError, Gone):
    code = "merchant_gone"


class IntentNotFound(MerchantError, NotFound):
    code = "intent_not_found"


class IntentStateConflict(MerchantError, Conflict):
    code = "intent_not_open"
