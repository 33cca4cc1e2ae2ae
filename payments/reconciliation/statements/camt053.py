"""ISO 20022 camt.053 bank-to-customer statements, versions .001.02 and .001.08.

The XML is hostile input. It is parsed with defusedxml's expat parser, which refuses a DTD
(``forbid_dtd``), entity declarations and external references before any is acted on, so a
billion-laughs bomb or an XXE probe is rejected with ``xml_forbidden`` and nothing else; no
network or file is ever touched. Parsing streams: the file is fed in 64 KiB chunks to a
parser target that keeps only the fields below, so memory holds the lines, never a tree.

What is read, per ``Document/BkToCstmrStmt/Stmt``:

* ``Id``; ``Acct/Id/IBAN`` or ``Acct/Id/Othr/Id``; ``Acct/Ccy``; ``FrToDt/FrDtTm`` and ``ToDtTm``;
* ``Bal`` with ``Tp/CdOrPrtry/Cd`` ``OPBD`` (or ``PRCD``, previously closed booked) as the
  opening balance, ``CLBD`` as the closing one and ``CLAV`` as the closing available
  balance; ``Amt`` with ``@Ccy``, ``CdtDbtInd`` (``CRDT`` positive, ``DBIT`` negative);
* each ``Ntry``: ``AcctSvcrRef`` (else ``NtryRef``) as the line id; ``Amt``/``@Ccy`` and
  ``CdtDbtInd``; ``RvslInd``; ``Sts`` (``BOOK`` only: pending and information entries are
  not booked and are skipped; .02 writes the code directly, .08 inside ``Cd``);
  ``BookgDt`` and ``ValDt`` as ``Dt`` or ``DtTm`` (a date-time is taken in Vietnam time);
  ``NtryDtls/TxDtls/Refs/EndToEndId`` and ``RmtInf/Strd/CdtrRefInf/Ref`` as the reference
  (several, space-separated, for a batch booking; ``NOTPROVIDED`` is dropped);
  ``RmtInf/Ustrd``, ``AddtlTxInf`` and ``AddtlNtryInf`` as the description.

Several ``Stmt`` in one file (pages, or consecutive days of one account) make one statement
when each opens where the previous one closed. Locations are element paths with positions
where an element repeats, e.g. ``/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]/Amt``; a file that
is not well-formed is reported at its line and column and the element it was in.
"""

from __future__ import annotations

import datetime as dt
from typing import BinaryIO

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from payments.ledger.domain import CURRENCY
from payments.reconciliation.errors import (
    CurrencyNotVnd,
    FieldInvalid,
    NamespaceUnsupported,
    Problems,
    StatementMalformed,
    XmlForbidden,
)
from payments.reconciliation.statements.model import Statement, StatementBuilder, StatementLine
from payments.reconciliation.statements.values import (
    MAX_BALANCE,
    MAX_DESCRIPTION,
    MAX_REFERENCE,
    check_line_id,
    clean_text,
    parse_amount,
)
from qr.schemes import MAX_AMOUNT

NAMESPACES = {
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02": "camt053.001.02",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08": "camt053.001.08",
}
CHUNK = 64 * 1024
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")

# Paths below Ntry whose text the reader keeps; several values for the repeatable ones.
_ENTRY_FIELDS = frozenset(
    {
        "NtryRef",
        "Amt",
        "CdtDbtInd",
        "RvslInd",
        "Sts",
        "Sts/Cd",
        "Sts/Prtry",
        "BookgDt/Dt",
        "BookgDt/DtTm",
        "ValDt/Dt",
        "ValDt/DtTm",
        "AcctSvcrRef",
        "AddtlNtryInf",
    }
)
_ENTRY_LISTS = frozenset(
    {
        "NtryDtls/TxDtls/Refs/EndToEndId",
        "NtryDtls/TxDtls/RmtInf/Strd/CdtrRefInf/Ref",
        "NtryDtls/TxDtls/RmtInf/Ustrd",
        "NtryDtls/TxDtls/AddtlTxInf",
    }
)
_STMT_FIELDS = frozenset(
    {"Id", "Acct/Id/IBAN", "Acct/Id/Othr/Id", "Acct/Ccy", "FrToDt/FrDtTm", "FrToDt/ToDtTm"}
)
_BAL_FIELDS = frozenset({"Tp/CdOrPrtry/Cd", "Amt", "CdtDbtInd", "Dt/Dt", "Dt/DtTm"})
_ENTRY_WANTED = _ENTRY_FIELDS | _ENTRY_LISTS
_REPEATED = frozenset({"Stmt", "Bal", "Ntry", "NtryDtls", "TxDtls", "Ustrd", "Strd"})


def read_camt053(stream: BinaryIO) -> Statement:
    """Read and validate a camt.053 statement from a binary stream."""
    problems = Problems()
    target = _Target(problems)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        while chunk := stream.read(CHUNK):
            parser.feed(chunk)
        parser.close()
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
        problems.fatal(XmlForbidden(_forbidden(exc), location=_position(parser, target)))
    except ParseError as exc:
        line, column = exc.position
        problems.fatal(
            StatementMalformed(
                f"the XML is not well-formed: {_expat_message(exc)}",
                location=f"line {line}, column {column}, in {target.path() or 'the prolog'}",
            )
        )
    assert target.builder is not None
    return target.builder.finish()


def _forbidden(exc: Exception) -> str:
    if isinstance(exc, DTDForbidden):
        what = "declares a DTD (<!DOCTYPE>)"
    elif isinstance(exc, EntitiesForbidden):
        what = "declares an entity"
    else:
        what = "refers to an external entity"
    return (
        f"the file {what}; statements need none, and they are refused because they enable "
        "entity-expansion bombs and reading files or URLs from the server"
    )


def _position(parser: DefusedXMLParser, target: _Target) -> str:
    expat = parser.parser
    where = target.path() or "the prolog"
    return f"line {expat.CurrentLineNumber}, column {expat.CurrentColumnNumber}, in {where}"


def _expat_message(exc: ParseError) -> str:
    # "no element found: line 40, column 0" -> "no element found"; the location is given apart.
    return str(exc).split(": line ")[0]


class _Target:
    """Parser target that keeps the statement fields and hands lines to the builder.

    Three scopes collect fields: a ``Stmt`` (its header), a ``Bal`` and an ``Ntry``. Inside
    a scope every element knows its path relative to the scope (``NtryDtls/TxDtls/Refs/...``)
    and its text is kept only when that path is one the reader wants.
    """

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.builder: StatementBuilder | None = None
        self.namespace = ""
        self.stack: list[str] = []
        self.rels: list[str | None] = [None]
        self.counts: list[dict[str, int] | None] = [None]
        self.text: list[str] = []
        self.names: dict[str, str] = {}
        self.steps: dict[str, str] = {}
        self.scope = ""
        self.fields: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.wanted_fields: frozenset[str] = frozenset()
        self.wanted_lists: frozenset[str] = frozenset()
        self.wanted: frozenset[str] = frozenset()
        self.collecting = False
        self.stmt: dict[str, str] = {}
        self.stmt_path = ""
        self.balances: list[tuple[str, dict[str, str], str]] = []
        self.entry_path = ""
        self.closing: tuple[int, str] | None = None
        self.available: int | None = None
        self.stmt_to: dt.date | None = None
        self.started = False

    def path(self) -> str:
        """Return the path of the element being read, with positions of repeated elements."""
        return "".join(self.stack)

    def _name(self, tag: str) -> str:
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        name = local if ns == self.namespace else tag
        self.names[tag] = name
        self.steps[name] = f"/{name}"
        return name

    # -- parser target protocol ---------------------------------------------------------------

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        """Enter an element."""
        stack = self.stack
        if not stack:
            self._root(tag)
        name = self.names.get(tag) or self._name(tag)
        if name in _REPEATED:
            counts = self.counts[-1]
            if counts is None:
                counts = self.counts[-1] = {}
            n = counts[name] = counts.get(name, 0) + 1
            stack.append(f"/{name}[{n}]")
        else:
            stack.append(self.steps[name])
        self.counts.append(None)
        parent = self.rels[-1]
        rel: str | None
        if parent is None:
            rel = None
            if name == "Stmt" and len(stack) == 3:
                self._begin_stmt()
                rel = ""
        elif parent:
            rel = f"{parent}/{name}"
        elif self.scope == "stmt" and (name == "Ntry" or name == "Bal"):
            self._enter(name)
            rel = ""
        else:
            rel = name
            if name == "Amt" and "Ccy" in attrib:
                self.fields["Amt@Ccy"] = attrib["Ccy"]
        self.rels.append(rel)
        if rel in self.wanted:
            self.text = []
            self.collecting = True

    def data(self, text: str) -> None:
        """Collect the character data of a wanted element."""
        if self.collecting:
            self.text.append(text)

    def end(self, tag: str) -> None:
        """Leave an element."""
        rel = self.rels.pop()
        if self.collecting and rel:
            self.collecting = False
            text = "".join(self.text).strip()
            if rel in self.wanted_lists:
                if text:
                    self.lists.setdefault(rel, []).append(text)
            else:
                self.fields[rel] = text
        elif rel == "":
            self._leave()
        self.stack.pop()
        self.counts.pop()

    def close(self) -> None:
        """Finish the document."""
        if self.builder is None:
            self.problems.fatal(StatementMalformed("the document holds no camt.053 statement"))

    def _enter(self, name: str) -> None:
        if name == "Ntry":
            if not self.started:
                self._open_section()
            self.scope, self.wanted_fields, self.wanted_lists = "entry", _ENTRY_FIELDS, _ENTRY_LISTS
            self.wanted = _ENTRY_WANTED
            self.entry_path = self.path()
        else:
            self.scope, self.wanted_fields, self.wanted_lists = "bal", _BAL_FIELDS, frozenset()
            self.wanted = _BAL_FIELDS
        self.fields, self.lists = {}, {}

    def _leave(self) -> None:
        scope = self.scope
        if scope == "entry":
            self._end_entry(self.fields, self.lists, self.entry_path)
        elif scope == "bal":
            self.balances.append((self.fields.get("Tp/CdOrPrtry/Cd", ""), self.fields, self.path()))
        else:
            self._end_stmt()
            self.scope, self.wanted = "", frozenset()
            return
        self.scope, self.fields, self.lists = "stmt", self.stmt, {}
        self.wanted_fields, self.wanted_lists, self.wanted = _STMT_FIELDS, frozenset(), _STMT_FIELDS

    # -- document ----------------------------------------------------------------------------

    def _root(self, tag: str) -> None:
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if local != "Document" or ns not in NAMESPACES:
            supported = ", ".join(sorted(NAMESPACES))
            found = f"{{{ns}}}{local}" if ns else local
            self.problems.fatal(
                NamespaceUnsupported(
                    f"the root element is {found}; a camt.053 statement is a Document in one of {supported}",
                    location=f"/{local}",
                )
            )
        self.namespace = ns
        self.builder = StatementBuilder(NAMESPACES[ns], problems=self.problems)

    def _begin_stmt(self) -> None:
        if self.stack[1] != "/BkToCstmrStmt":
            self.problems.fatal(
                StatementMalformed("a camt.053 Document holds BkToCstmrStmt", location=self.stack[1])
            )
        self.stmt = {}
        self.scope, self.fields, self.lists = "stmt", self.stmt, {}
        self.wanted_fields, self.wanted_lists, self.wanted = _STMT_FIELDS, frozenset(), _STMT_FIELDS
        self.stmt_path = self.path()
        self.balances = []
        self.started = False

    def _end_stmt(self) -> None:
        if not self.started:
            self._open_section()
        assert self.builder is not None
        if self.closing is not None and self.builder.in_section:
            closing, location = self.closing
            self.builder.end_section(
                closing=closing, location=location, period_to=self.stmt_to, available=self.available
            )

    def _open_section(self) -> None:
        """Begin the builder's section once the statement's header and balances are read."""
        assert self.builder is not None
        self.started = True
        add = self.problems.add
        where = self.stmt_path
        account = self.stmt.get("Acct/Id/IBAN") or self.stmt.get("Acct/Id/Othr/Id")
        currency = self.stmt.get("Acct/Ccy", CURRENCY)
        if currency != CURRENCY:
            add(
                CurrencyNotVnd(
                    f"the account currency is {currency!r}, not {CURRENCY}", location=f"{where}/Acct/Ccy"
                )
            )
        period_from = self._date(self.stmt.get("FrToDt/FrDtTm"), f"{where}/FrToDt/FrDtTm")
        self.stmt_to = self._date(self.stmt.get("FrToDt/ToDtTm"), f"{where}/FrToDt/ToDtTm")
        opening = closing = None
        self.closing = None
        self.available = None
        for code, bal, path in self.balances:
            amount = self._balance(bal, path)
            if amount is None:
                continue
            if code in ("OPBD", "PRCD") and opening is None:
                opening = (amount, path, self._date(bal.get("Dt/Dt") or bal.get("Dt/DtTm"), f"{path}/Dt"))
            elif code == "CLBD":
                closing = (amount, path, self._date(bal.get("Dt/Dt") or bal.get("Dt/DtTm"), f"{path}/Dt"))
            elif code == "CLAV":
                self.available = amount
        if opening is None or closing is None:
            missing = "opening (OPBD or PRCD)" if opening is None else "closing (CLBD)"
            self.problems.fatal(StatementMalformed(f"the statement has no {missing} balance", location=where))
        if period_from is None:
            period_from = opening[2]
        if self.stmt_to is None:
            self.stmt_to = closing[2]
        self.closing = (closing[0], closing[1])
        self.builder.begin_section(
            opening=opening[0],
            currency=currency,
            location=opening[1],
            account=account,
            period_from=period_from,
            statement_id=self.stmt.get("Id"),
        )

    # -- values ------------------------------------------------------------------------------

    def _balance(self, bal: dict[str, str], path: str) -> int | None:
        self._currency(bal.get("Amt@Ccy"), path)
        return self._amount(bal.get("Amt"), bal.get("Amt@Ccy"), bal.get("CdtDbtInd"), path, MAX_BALANCE)

    def _currency(self, ccy: str | None, path: str) -> None:
        if ccy is not None and ccy != CURRENCY:
            self.problems.add(
                CurrencyNotVnd(f"the amount is in {ccy!r}, not {CURRENCY}", location=f"{path}/Amt")
            )

    def _amount(
        self, text: str | None, ccy: str | None, mark: str | None, path: str, limit: int
    ) -> int | None:
        add = self.problems.add
        if text is None:
            add(StatementMalformed("the amount (Amt) is missing", location=path))
            return None
        try:
            amount = parse_amount(text, limit=limit)
        except ValueError as exc:
            add(FieldInvalid(str(exc), location=f"{path}/Amt"))
            return None
        if amount < 0:
            add(FieldInvalid("amounts are unsigned; CdtDbtInd gives the sign", location=f"{path}/Amt"))
            return None
        if mark == "CRDT":
            return amount
        if mark == "DBIT":
            return -amount
        add(FieldInvalid(f"CdtDbtInd is {mark!r}, not CRDT or DBIT", location=f"{path}/CdtDbtInd"))
        return None

    def _date(self, text: str | None, path: str) -> dt.date | None:
        if not text:
            return None
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.problems.add(FieldInvalid(f"{text!r} is not an ISO date or date-time", location=path))
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(VIETNAM)
        return moment.date()

    # -- entries -----------------------------------------------------------------------------

    def _end_entry(self, e: dict[str, str], lists: dict[str, list[str]], where: str) -> None:
        status = e.get("Sts") or e.get("Sts/Cd") or e.get("Sts/Prtry") or "BOOK"
        if status != "BOOK":
            return
        errors = len(self.problems.items)
        amount = self._amount(e.get("Amt"), e.get("Amt@Ccy"), e.get("CdtDbtInd"), where, MAX_AMOUNT)
        booking = self._date(e.get("BookgDt/Dt") or e.get("BookgDt/DtTm"), f"{where}/BookgDt")
        if booking is None and "BookgDt/Dt" not in e and "BookgDt/DtTm" not in e:
            self.problems.add(StatementMalformed("the booking date (BookgDt) is missing", location=where))
        value = self._date(e.get("ValDt/Dt") or e.get("ValDt/DtTm"), f"{where}/ValDt") or booking
        raw_id = e.get("AcctSvcrRef") or e.get("NtryRef") or ""
        line_id = None
        try:
            line_id = check_line_id(raw_id)
        except ValueError as exc:
            name = "AcctSvcrRef" if "AcctSvcrRef" in e else "NtryRef"
            self.problems.add(FieldInvalid(f"{exc} (AcctSvcrRef or NtryRef)", location=f"{where}/{name}"))
        refs = lists.get("NtryDtls/TxDtls/Refs/EndToEndId", []) + lists.get(
            "NtryDtls/TxDtls/RmtInf/Strd/CdtrRefInf/Ref", []
        )
        reference = self._text(
            " ".join(dict.fromkeys(r for r in refs if r != "NOTPROVIDED")), where, MAX_REFERENCE
        )
        described = (
            lists.get("NtryDtls/TxDtls/RmtInf/Ustrd", [])
            + lists.get("NtryDtls/TxDtls/AddtlTxInf", [])
            + [e.get("AddtlNtryInf", "")]
        )
        description = self._text(" ".join(dict.fromkeys(d for d in described if d)), where, MAX_DESCRIPTION)
        unreadable = len(self.problems.items) > errors
        # A foreign currency says nothing about whether the entry can be read, so the entry
        # still goes through the statement checks.
        self._currency(e.get("Amt@Ccy"), where)
        if unreadable:
            return
        assert amount is not None
        assert booking is not None
        assert value is not None
        assert line_id is not None
        reversal = e.get("RvslInd", "false").strip().lower() in ("true", "1")
        assert self.builder is not None
        line = StatementLine(line_id, booking, value, amount, reference, description, where, reversal)
        self.builder.add_line(line)

    def _text(self, text: str, where: str, limit: int) -> str:
        try:
            return clean_text(text, limit=limit, what="the text")
        except ValueError as exc:
            self.problems.add(FieldInvalid(str(exc), location=where))
            return ""
