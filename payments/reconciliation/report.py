"""The stored report: its rows, its canonical form and digest, and reading it back.

The canonical form of a report is JSON Lines, UTF-8, each line canonical JSON
(:func:`payments.ledger.canonical.canonical_json`: sorted keys, no whitespace, integers only)
followed by ``\\n``:

* line 1, the header: ``v`` (1), ``reconciliation`` (public id), ``account`` (ledger code),
  ``statement`` (fingerprint, format, period, balances, line count), ``checkpoint`` (the
  pinned tree size, root in hex and the signed note itself), ``config`` (date window, fuzzy
  threshold), ``balance`` (the balance check), ``stats`` (matches per rule, fuzzy work),
  ``totals`` (count and money per category) and ``items`` (how many lines follow);
* one line per item in position order: ``position``, ``category``, ``rule``, ``line`` (the
  statement line's ``line_id``, ``booking_date``, ``value_date``, ``amount``, ``reference``,
  ``description``, ``source``, ``reversal``; null for an item the bank lacks),
  ``transactions`` (public ids), ``ledger_amount``, ``ledger_date`` and ``ledger_reference``
  (the first ledger item's date and reference, for every category but ``matched``),
  ``related``, ``score`` and ``difference``.

The report digest is the SHA-256 of those bytes. The writer and the verifier build each line
from the same :class:`ReportItem` with :func:`item_line`, a fast encoder whose output equals
``canonical_json`` of :meth:`ReportItem.as_dict` (a property test holds it to that), so a
report can be checked from its rows alone: any change to a stored row, total or header field
changes the digest. Auditors' decisions are not part of it: they come after the seal.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from chopay.db import bulk_insert, copy_rows
from payments.ledger.canonical import canonical_json
from payments.reconciliation.domain import Category, Rule
from payments.reconciliation.items import LedgerItems
from payments.reconciliation.models import (
    DESCRIPTIONS,
    MAX_SOURCE,
    TEXT_BLOCK,
    Decision,
    Item,
    Reconciliation,
    StatementRecord,
    TextBlock,
    Total,
)
from payments.reconciliation.result import Outcome
from payments.reconciliation.result import Reconciliation as Result

REPORT_VERSION = 1
COLUMNS = (
    "reconciliation_id",
    "position",
    "category",
    "rule",
    "line_id",
    "booking_date",
    "value_date",
    "amount",
    "reference",
    "source",
    "reversal",
    "transactions",
    "ledger_amount",
    "ledger_date",
    "ledger_reference",
    "related",
    "score",
    "difference",
)
READ_PAGE = 5000


class ReportItem(NamedTuple):
    """One report item, as written and as read back."""

    position: int
    category: str
    rule: str | None
    line_id: str | None
    booking_date: dt.date | None
    value_date: dt.date | None
    amount: int | None
    reference: str | None
    description: str | None
    source: str | None
    reversal: bool | None
    transactions: tuple[str, ...]
    ledger_amount: int | None
    ledger_date: dt.date | None
    ledger_reference: str | None
    related: str | None
    score: int | None
    difference: int

    def line(self) -> dict[str, Any] | None:
        """Return the statement line's fields, or None for an item the bank lacks."""
        if self.line_id is None:
            return None
        assert self.booking_date is not None
        assert self.value_date is not None
        return {
            "line_id": self.line_id,
            "booking_date": self.booking_date.isoformat(),
            "value_date": self.value_date.isoformat(),
            "amount": self.amount,
            "reference": self.reference or "",
            "description": self.description or "",
            "source": self.source or "",
            "reversal": bool(self.reversal),
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the item as its canonical JSON object."""
        return {
            "position": self.position,
            "category": self.category,
            "rule": self.rule,
            "line": self.line(),
            "transactions": list(self.transactions),
            "ledger_amount": self.ledger_amount,
            "ledger_date": None if self.ledger_date is None else self.ledger_date.isoformat(),
            "ledger_reference": self.ledger_reference,
            "related": self.related,
            "score": self.score,
            "difference": self.difference,
        }


_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': written as it is


def _js(value: str | None) -> str:
    if value is None:
        return "null"
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _num(value: int | None) -> str:
    return "null" if value is None else str(value)


def _day(value: dt.date | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def item_line(item: ReportItem) -> str:
    """Return the canonical JSON of ``item`` (keys sorted) without building a dict."""
    if item.line_id is None:
        line = "null"
    else:
        line = (
            f'{{"amount":{item.amount},"booking_date":{_day(item.booking_date)},'
            f'"description":{_js(item.description or "")},"line_id":{_js(item.line_id)},'
            f'"reference":{_js(item.reference or "")},"reversal":{"true" if item.reversal else "false"},'
            f'"source":{_js(item.source or "")},"value_date":{_day(item.value_date)}}}'
        )
    txs = ",".join(_js(t) for t in item.transactions)
    return (
        f'{{"category":{_js(item.category)},"difference":{item.difference},'
        f'"ledger_amount":{_num(item.ledger_amount)},"ledger_date":{_day(item.ledger_date)},'
        f'"ledger_reference":{_js(item.ledger_reference)},"line":{line},"position":{item.position},'
        f'"related":{_js(item.related)},"rule":{_js(item.rule)},"score":{_num(item.score)},'
        f'"transactions":[{txs}]}}'
    )


def balance_check(rec: Reconciliation, statement: StatementRecord) -> dict[str, Any]:
    """Return the balance check of a report as stored."""
    return {
        "statement_opening": statement.opening_balance,
        "statement_closing": statement.closing_balance,
        "ledger_opening": rec.ledger_opening,
        "ledger_closing": rec.ledger_closing,
        "ledger_at_checkpoint": rec.ledger_at_checkpoint,
        "explained": rec.explained,
        "unexplained": rec.unexplained,
        "fully_explained": rec.fully_explained,
    }


def header(rec: Reconciliation, statement: StatementRecord, totals: Sequence[Total]) -> dict[str, Any]:
    """Return the canonical header of a report from its stored rows."""
    by_category = {t.category: t for t in totals}
    return {
        "v": REPORT_VERSION,
        "reconciliation": rec.public_id,
        "account": rec.account,
        "statement": {
            "fingerprint": statement.fingerprint,
            "format": statement.format,
            "period_from": statement.period_from.isoformat(),
            "period_to": statement.period_to.isoformat(),
            "opening_balance": statement.opening_balance,
            "closing_balance": statement.closing_balance,
            "lines": statement.line_count,
        },
        "checkpoint": {
            "size": rec.checkpoint_size,
            "root": None if rec.checkpoint_root is None else rec.checkpoint_root.hex(),
            "note": rec.checkpoint_note,
        },
        "config": {"date_window_days": rec.date_window_days, "fuzzy_threshold": rec.fuzzy_threshold},
        "balance": balance_check(rec, statement),
        "stats": rec.stats,
        "totals": {
            c.value: {
                "count": by_category[c.value].count,
                "bank_amount": by_category[c.value].bank_amount,
                "ledger_amount": by_category[c.value].ledger_amount,
                "difference": by_category[c.value].difference,
            }
            for c in Category
            if c.value in by_category
        },
        "items": rec.item_count,
    }


def _first_reference(items: LedgerItems, pos: int) -> str | None:
    for name in ("payout_ref", "bank_txn_id", "funding_ref", "intent", "receipt", "connector_txn_id"):
        value = items.reference(name, pos)
        if value:
            return value
    return None


def report_items(result: Result) -> Iterator[ReportItem]:
    """Yield the report items of an engine result, in position order."""
    item = _ItemMaker(result)
    for position, o in enumerate(result.outcomes()):
        yield item(position, o)


class _ItemMaker:
    """Builds the :class:`ReportItem` of one outcome of a result."""

    def __init__(self, result: Result) -> None:
        self.lines, self.items = result.statement.lines, result.items
        self.dates: dict[int, dt.date] = {}

    def day(self, ordinal: int) -> dt.date:
        found = self.dates.get(ordinal)
        if found is None:
            found = self.dates[ordinal] = dt.date.fromordinal(ordinal)
        return found

    def __call__(self, position: int, o: Outcome) -> ReportItem:
        lines, items, day = self.lines, self.items, self.day
        txs = tuple(items.transaction(p) for p in o.items)
        ledger_amount = sum(items.amounts[p] for p in o.items) if o.items else None
        plain = o.category is Category.MATCHED or not o.items
        first = o.items[0] if o.items else -1
        related = None if o.related is None else o.related.transaction
        if o.line_index is None:
            return ReportItem(
                position, o.category.value, None, None, None, None, None, None, None, None, None, txs,
                ledger_amount, day(items.days[first]), _first_reference(items, first), related, None,
                o.difference,
            )  # fmt: skip
        i = o.line_index
        return ReportItem(
            position, o.category.value, None if o.rule is None else o.rule.value, lines.line_ids[i],
            day(lines.booking_days[i]), day(lines.value_days[i]), lines.amounts[i], lines.references[i],
            lines.descriptions[i], lines.source(i)[:MAX_SOURCE], bool(lines.reversals[i]), txs, ledger_amount,
            None if plain else day(items.days[first]), None if plain else _first_reference(items, first),
            related, o.score, o.difference,
        )  # fmt: skip


def _row(reconciliation_id: int, item: ReportItem) -> tuple[Any, ...]:
    """Return the values of ``item``'s row, in :data:`COLUMNS` order."""
    transactions = " ".join(item.transactions) or None
    return (reconciliation_id, item[0], *item[1:8], *item[9:11], transactions, *item[12:])


def _copy_text(value: str) -> str:
    """Return ``value`` as a field of COPY's text format."""
    if value.isprintable() and "\\" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def copy_line(values: Sequence[Any]) -> str:
    """Return one row of COPY's text format (what psycopg's ``write_row`` sends)."""
    return "\t".join(map(_copy_value, values)) + "\n"


def encoded_rows(result: Result, reconciliation_id: int) -> Iterator[tuple[str, str]]:
    """Yield each report item's COPY row and canonical JSON line, in position order.

    What it yields equals :func:`copy_line` of the item's row and :func:`item_line` of the
    item (a test holds it to that). A line matched to one item, most of any report, is
    written straight from the columns; every other item goes through :class:`ReportItem`.
    """
    lines, items = result.statement.lines, result.items
    ids, refs, texts, amounts = lines.line_ids, lines.references, lines.descriptions, lines.amounts
    bdays, vdays, reversals = lines.booking_days, lines.value_days, lines.reversals
    item_amounts, transaction, source = items.amounts, items.transaction, lines.source
    dates: dict[int, str] = {}
    rules = {r: (r.value, _js(r.value)) for r in Rule}
    rid = str(reconciliation_id)
    matched = Category.MATCHED
    slow = _ItemMaker(result)

    def iso(ordinal: int) -> str:
        found = dates.get(ordinal)
        if found is None:
            found = dates[ordinal] = dt.date.fromordinal(ordinal).isoformat()
        return found

    for position, o in enumerate(result.outcomes()):
        i = o.line_index
        if (
            o.category is not matched
            or i is None
            or len(o.items) != 1
            or o.rule is None
            or o.related is not None
            or o.score is not None
        ):
            item = slow(position, o)
            yield copy_line(_row(reconciliation_id, item)), item_line(item)
            continue
        p = o.items[0]
        line_id, reference, src, tx = ids[i], refs[i], source(i)[:MAX_SOURCE], transaction(p)
        rule, rule_json = rules[o.rule]
        booked, valued, amount, ledger_amount = iso(bdays[i]), iso(vdays[i]), amounts[i], item_amounts[p]
        reversal = bool(reversals[i])
        yield (
            f"{rid}\t{position}\tmatched\t{rule}\t{_copy_text(line_id)}\t{booked}\t{valued}\t{amount}\t"
            f"{_copy_text(reference)}\t{_copy_text(src)}\t{'t' if reversal else 'f'}\t{_copy_text(tx)}\t"
            f"{ledger_amount}\t\\N\t\\N\t\\N\t\\N\t{o.difference}\n",
            f'{{"category":"matched","difference":{o.difference},"ledger_amount":{ledger_amount},'
            f'"ledger_date":null,"ledger_reference":null,"line":{{"amount":{amount},"booking_date":"{booked}",'
            f'"description":{_js(texts[i])},"line_id":{_js(line_id)},"reference":{_js(reference)},'
            f'"reversal":{"true" if reversal else "false"},"source":{_js(src)},"value_date":"{valued}"}},'
            f'"position":{position},"related":null,"rule":{rule_json},"score":null,"transactions":[{_js(tx)}]}}',
        )


def write(
    session: Session, rec: Reconciliation, statement: StatementRecord, result: Result, keys: DataKeys
) -> str:
    """Store the report of ``result`` on ``rec`` (flushing only); return its digest."""
    totals = [
        Total(
            reconciliation_id=rec.id,
            category=c.value,
            count=t.count,
            bank_amount=t.bank_amount,
            ledger_amount=t.ledger_amount,
            difference=t.difference,
        )
        for c, t in result.totals.items()
    ]
    session.add_all(totals)
    balance = result.balance
    rec.ledger_opening = balance.ledger_opening
    rec.ledger_closing = balance.ledger_closing
    rec.explained = balance.explained
    rec.unexplained = balance.unexplained
    rec.fully_explained = balance.fully_explained
    rec.item_count = len(result)
    rec.stats = {
        "by_rule": {rule.value: n for rule, n in result.stats.by_rule.items()},
        "fuzzy_comparisons": result.stats.fuzzy_comparisons,
        "not_examined": result.stats.not_examined,
        "capped": result.stats.capped,
    }
    session.flush()
    digest = hashlib.sha256(canonical_json(header(rec, statement, totals)) + b"\n")
    update = digest.update
    descriptions = result.statement.lines.descriptions
    blocks: list[dict[str, Any]] = []

    def seal_descriptions() -> None:
        blocks.extend(
            {
                "reconciliation_id": rec.id,
                "block": start // TEXT_BLOCK,
                "descriptions": keys.encrypt(
                    json.dumps(descriptions[start : start + TEXT_BLOCK], ensure_ascii=False),
                    DESCRIPTIONS.context,
                ),
            }
            for start in range(0, len(descriptions), TEXT_BLOCK)
        )

    if session.get_bind().dialect.name == "postgresql":
        # The descriptions are sealed while the server still stores the rows sent.
        _copy_items(session, rec.id, result, update, before_end=seal_descriptions)
    else:
        with copy_rows(session, Item, COLUMNS) as put:
            for item in report_items(result):
                put(_row(rec.id, item))
                update(item_line(item).encode())
                update(b"\n")
        seal_descriptions()
    bulk_insert(session, TextBlock, blocks)
    return digest.hexdigest()


COPY_CHUNK = 2000
"""Report rows sent to PostgreSQL's COPY per write."""


def _copy_items(
    session: Session,
    reconciliation_id: int,
    result: Result,
    update: Callable[[bytes], None],
    *,
    before_end: Callable[[], None],
) -> None:
    """Stream the report rows into COPY as text, and their canonical lines into ``update``.

    ``before_end`` runs once every row is sent, before waiting for the server to store them.
    """
    import psycopg

    driver = cast(Any, session.connection().connection.driver_connection)
    statement = f"COPY {Item.__tablename__} ({', '.join(COLUMNS)}) FROM STDIN"
    rows: list[str] = []
    canonical: list[str] = []
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row, line in encoded_rows(result, reconciliation_id):
                rows.append(row)
                canonical.append(line)
                if len(rows) == COPY_CHUNK:
                    copy.write("".join(rows))
                    update("\n".join(canonical).encode() + b"\n")
                    rows.clear()
                    canonical.clear()
            if rows:
                copy.write("".join(rows))
                update("\n".join(canonical).encode() + b"\n")
            before_end()
    except psycopg.IntegrityError as exc:
        raise IntegrityError(statement, None, exc, hide_parameters=True) from exc


class Descriptions:
    """Opens encrypted description blocks of one reconciliation as they are needed."""

    def __init__(self, session: Session, reconciliation_id: int, keys: DataKeys) -> None:
        self.session = session
        self.reconciliation_id = reconciliation_id
        self.keys = keys
        self.blocks: dict[int, list[str]] = {}

    def load(self, blocks: set[int]) -> None:
        """Open ``blocks`` now, in one query."""
        wanted = sorted(blocks - self.blocks.keys())
        if not wanted:
            return
        rows = self.session.execute(
            sa.select(TextBlock.block, TextBlock.descriptions).where(
                TextBlock.reconciliation_id == self.reconciliation_id, TextBlock.block.in_(wanted)
            )
        )
        for block, sealed in rows:
            self.blocks[block] = json.loads(self.keys.decrypt(sealed, DESCRIPTIONS.context))

    def get(self, position: int) -> str | None:
        """Return the description of the line at ``position`` (None past the lines)."""
        block = position // TEXT_BLOCK
        if block not in self.blocks:
            if len(self.blocks) > 4:
                self.blocks.clear()  # a stream moves forward: keep memory flat
            self.load({block})
        found = self.blocks.get(block)
        offset = position % TEXT_BLOCK
        return found[offset] if found is not None and offset < len(found) else None


_ITEM_COLUMNS = [getattr(Item, c) for c in COLUMNS[1:]]


def _from_row(row: Any, description: str | None) -> ReportItem:
    position, category, rule, line_id, bday, vday, amount, reference, source, reversal = row[:10]
    transactions, ledger_amount, ledger_date, ledger_reference, related, score, difference = row[10:17]
    return ReportItem(
        position, category, rule, line_id, bday, vday, amount, reference,
        description if line_id is not None else None, source, reversal,
        tuple(transactions.split()) if transactions else (), ledger_amount, ledger_date, ledger_reference,
        related, score, difference,
    )  # fmt: skip


def page(
    session: Session,
    rec: Reconciliation,
    keys: DataKeys,
    *,
    after: int | None,
    limit: int,
    category: str | None = None,
) -> list[tuple[ReportItem, Decision | None]]:
    """Return up to ``limit`` items after position ``after``, with their decisions."""
    stmt = (
        sa.select(*_ITEM_COLUMNS, Decision)
        .outerjoin(
            Decision,
            sa.and_(Decision.reconciliation_id == Item.reconciliation_id, Decision.position == Item.position),
        )
        .where(Item.reconciliation_id == rec.id)
        .order_by(Item.position)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Item.position > after)
    if category is not None:
        stmt = stmt.where(Item.category == category)
    rows = session.execute(stmt).all()
    texts = Descriptions(session, rec.id, keys)
    texts.load({r[0] // TEXT_BLOCK for r in rows if r[3] is not None})
    return [(_from_row(r, texts.get(r[0])), r[-1]) for r in rows]


def stream(session: Session, rec: Reconciliation, keys: DataKeys) -> Iterator[tuple[ReportItem, str | None]]:
    """Yield every item in position order with its decision's action, reading in pages."""
    texts = Descriptions(session, rec.id, keys)
    after = -1
    while True:
        rows = session.execute(
            sa.select(*_ITEM_COLUMNS, Decision.action)
            .outerjoin(
                Decision,
                sa.and_(
                    Decision.reconciliation_id == Item.reconciliation_id, Decision.position == Item.position
                ),
            )
            .where(Item.reconciliation_id == rec.id, Item.position > after)
            .order_by(Item.position)
            .limit(READ_PAGE)
        ).all()
        if not rows:
            return
        for r in rows:
            yield _from_row(r, texts.get(r[0]) if r[3] is not None else None), r[-1]
        after = rows[-1][0]


def canonical_lines(session: Session, rec: Reconciliation, keys: DataKeys) -> Iterator[bytes]:
    """Yield the canonical form of a stored report, line by line (its SHA-256 is the digest)."""
    statement = session.get(StatementRecord, rec.statement_id)
    assert statement is not None
    totals = list(session.scalars(sa.select(Total).where(Total.reconciliation_id == rec.id)))
    yield canonical_json(header(rec, statement, totals)) + b"\n"
    for item, _ in stream(session, rec, keys):
        yield item_line(item).encode() + b"\n"


def digest_of_stored(session: Session, rec: Reconciliation, keys: DataKeys) -> str:
    """Recompute the digest of a stored report from its rows."""
    digest = hashlib.sha256()
    for line in canonical_lines(session, rec, keys):
        digest.update(line)
    return digest.hexdigest()


CSV_COLUMNS = (
    "position",
    "category",
    "rule",
    "line_id",
    "booking_date",
    "value_date",
    "amount",
    "reference",
    "description",
    "source",
    "transactions",
    "ledger_amount",
    "ledger_date",
    "ledger_reference",
    "related",
    "score",
    "difference",
    "decision",
)


def csv_row(item: ReportItem, decision: str | None) -> list[Any]:
    """Return the report CSV row of ``item``."""
    return [
        item.position, item.category, item.rule, item.line_id, item.booking_date, item.value_date,
        item.amount, item.reference, item.description, item.source, " ".join(item.transactions),
        item.ledger_amount, item.ledger_date, item.ledger_reference, item.related, item.score,
        item.difference, decision,
    ]  # fmt: skip


def csv_chunks(session: Session, rec: Reconciliation, keys: DataKeys, every: int = 1000) -> Iterator[str]:
    """Yield the report CSV (header, then one row per item) in chunks of ``every`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for n, (item, decision) in enumerate(stream(session, rec, keys), 1):
        writer.writerow(csv_row(item, decision))
        if n % every == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def pack(raw: bytes) -> str:
    """Return an original statement file as text to encrypt: zlib-compressed, then base64."""
    return base64.b64encode(zlib.compress(raw, 1)).decode()


def unpack(text: str) -> bytes:
    """Return the original file from :func:`pack`'s text."""
    return zlib.decompress(base64.b64decode(text))
