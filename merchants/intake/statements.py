"""A merchant's payments, its daily statement, and a market's figures for the campaign.

Days are Vietnam days (UTC+7, no daylight saving), as vendors and market boards count them;
a payment belongs to the day of its bank time (``occurred_at``).

Market figures (:func:`market_figures`), for a period ``from``..``to`` (inclusive days):

* ``registered_vendors``: merchants of the market, whatever their status; ``active_vendors``:
  those active now;
* ``vendors_paid_7d`` / ``vendors_paid_30d``: merchants with at least one payment in the 7 / 30
  days ending with ``to``;
* ``days``: per day of the period, the count and value of payments;
* ``qr_acceptance_share``: the share of active vendors that received at least one QR payment
  in the period (0 when the market has no active vendor), as a fraction with 4 decimals.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.errors import Unprocessable
from merchants.intake.models import Payment
from merchants.models import Merchant
from payments.rails.webhooks import VIETNAM

MAX_PERIOD_DAYS = 366
STATEMENT_LIMIT = 10_000
CSV_COLUMNS = ("payment", "occurred_at", "amount", "reference", "kind", "flag", "bank_txn_id", "connector")


FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2199, 12, 31)


def check_day(day: dt.date | None, field: str = "date") -> None:
    """Refuse a day outside FIRST_DAY..LAST_DAY: no payment was, or will be, recorded there."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise Unprocessable(
            f"{field} must lie between {FIRST_DAY} and {LAST_DAY}.",
            code="date_out_of_range",
            errors={"query": {field: [f"between {FIRST_DAY} and {LAST_DAY}"]}},
        )


def check_period(first: dt.date | None, last: dt.date | None, *, limit: int | None = None) -> None:
    """Refuse a period that ends before it starts, or (with ``limit``) is longer than ``limit`` days."""
    check_day(first, "from")
    check_day(last, "to")
    if first is None or last is None:
        return
    if last < first:
        raise Unprocessable(
            "The period ends before it starts.",
            code="period_invalid",
            errors={"query": {"to": ["before 'from'"]}},
        )
    if limit is not None and (last - first).days >= limit:
        raise Unprocessable(
            f"A period is at most {limit} days.",
            code="period_too_long",
            errors={"query": {"to": [f"at most {limit} days after 'from'"]}},
        )


def day_bounds(first: dt.date, last: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC instants where Vietnam day ``first`` starts and day ``last`` ends."""
    start = dt.datetime.combine(first, dt.time(), VIETNAM)
    end = dt.datetime.combine((last or first) + dt.timedelta(days=1), dt.time(), VIETNAM)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def vietnam_day(moment: dt.datetime) -> dt.date:
    """Return the Vietnam day of an instant."""
    return moment.astimezone(VIETNAM).date()


def list_payments(
    session: Session,
    merchant: Merchant,
    *,
    first: dt.date | None,
    last: dt.date | None,
    after: int | None,
    limit: int,
) -> list[Payment]:
    """Return the merchant's payments by id after the cursor, within the days given."""
    stmt = sa.select(Payment).where(Payment.merchant_id == merchant.id).order_by(Payment.id).limit(limit)
    if first is not None:
        stmt = stmt.where(Payment.occurred_at >= day_bounds(first)[0])
    if last is not None:
        stmt = stmt.where(Payment.occurred_at < day_bounds(last)[1])
    if after is not None:
        stmt = stmt.where(Payment.id > after)
    return list(session.scalars(stmt))


def statement(session: Session, merchant: Merchant, day: dt.date) -> dict[str, Any]:
    """Return the merchant's statement of one Vietnam day: count, total, first, last, payments."""
    start, end = day_bounds(day)
    rows = session.scalars(
        sa.select(Payment)
        .where(Payment.merchant_id == merchant.id, Payment.occurred_at >= start, Payment.occurred_at < end)
        .order_by(Payment.occurred_at, Payment.id)
        .limit(STATEMENT_LIMIT)
    ).all()
    return {
        "merchant": merchant.public_id,
        "date": day,
        "count": len(rows),
        "total": sum(p.amount for p in rows),
        "first": rows[0] if rows else None,
        "last": rows[-1] if rows else None,
        "payments": list(rows),
    }


def statement_csv(found: dict[str, Any]) -> str:
    """Render a statement's payments as CSV (UTF-8, Vietnam times, one header row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in found["payments"]:
        writer.writerow(
            [
                p.id,
                p.occurred_at.astimezone(VIETNAM).isoformat(),
                p.amount,
                p.reference or "",
                p.kind,
                p.flag or "",
                p.bank_txn_id,
                p.connector,
            ]
        )
    return out.getvalue()


def _paid_since(session: Session, merchant_ids: Any, since: dt.datetime, until: dt.datetime) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(Payment.merchant_id))).where(
                Payment.merchant_id.in_(merchant_ids),
                Payment.occurred_at >= since,
                Payment.occurred_at < until,
            )
        )
        or 0
    )


def market_figures(session: Session, market_code: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Return the campaign figures of one market over the days ``first``..``last``."""
    in_market = sa.select(Merchant.id).where(Merchant.market_code == market_code).scalar_subquery()
    registered, active = session.execute(
        sa.select(
            sa.func.count(Merchant.id),
            sa.func.coalesce(sa.func.sum(sa.case((Merchant.status == "active", 1), else_=0)), 0),
        ).where(Merchant.market_code == market_code)
    ).one()
    start, end = day_bounds(first, last)
    per_day: dict[dt.date, list[int]] = {}
    rows = session.execute(
        sa.select(Payment.occurred_at, Payment.amount).where(
            Payment.merchant_id.in_(in_market), Payment.occurred_at >= start, Payment.occurred_at < end
        )
    )
    for occurred_at, amount in rows:
        bucket = per_day.setdefault(vietnam_day(occurred_at), [0, 0])
        bucket[0] += 1
        bucket[1] += amount
    days = []
    day = first
    while day <= last:
        count, value = per_day.get(day, [0, 0])
        days.append({"date": day, "count": count, "value": value})
        day += dt.timedelta(days=1)
    active_ids = (
        sa.select(Merchant.id)
        .where(Merchant.market_code == market_code, Merchant.status == "active")
        .scalar_subquery()
    )
    accepting = _paid_since(session, active_ids, start, end)
    return {
        "market_code": market_code,
        "from_": first,
        "to": last,
        "registered_vendors": int(registered),
        "active_vendors": int(active),
        "vendors_paid_7d": _paid_since(session, in_market, end - dt.timedelta(days=7), end),
        "vendors_paid_30d": _paid_since(session, in_market, end - dt.timedelta(days=30), end),
        "payment_count": sum(d["count"] for d in days),
        "payment_value": sum(d["value"] for d in days),
        "days": days,
        "qr_acceptance_share": round(accepting / int(active), 4) if int(active) else 0.0,
    }
