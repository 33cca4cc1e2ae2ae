"""One line of a bank statement."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked movement: ``amount`` dong, positive into the account, negative out of it."""

    line_id: str
    booking_date: dt.date
    value_date: dt.date
    amount: int
    reference: str
    description: str
    source: str
    """Where the line is in its file: ``line 12``, or an element path in camt.053."""
    reversal: bool = False
    """The bank marks the entry as reversing an earlier one (camt ``RvslInd``, MT940 ``RC``/``RD``)."""
