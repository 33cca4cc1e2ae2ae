"""Streaming readers of uploaded tables: CSV (UTF-8) and XLSX, one row at a time.

A file of a million rows never sits whole in memory: CSV is read line by line from a binary
stream, XLSX through openpyxl's read-only mode, which parses the sheet as it goes. (The
workbook's shared-strings table is the exception: openpyxl keeps it in memory, so the largest
files are best sent as CSV.)

What spreadsheets do to files is tolerated and, where it loses information, reported:

* a UTF-8 byte-order mark, CRLF line ends, ``;`` or tab as separator (from locales whose list
  separator is not a comma), blank rows anywhere (trailing ones included);
* a cell that Excel turned into a number keeps its digits and is marked ``numeric`` in its
  row, so that the checks can say that a national id lost its leading zero instead of
  guessing it back;
* headers are matched ignoring case, spaces and hyphens ("National ID" is ``national_id``).

Problems with the file as a whole raise :class:`FileProblem` with a stable code and a message
that says what to do: a file that is not UTF-8 (save it as "CSV UTF-8"), UTF-16 text, an old
``.xls``, a missing column, a header typo (naming the closest known column), a duplicated
column, a workbook whose parts would inflate beyond sane limits (a zip bomb), an unreadable
line. Nothing else escapes: arbitrary bytes end in rows or in a FileProblem.

Rows are numbered as a spreadsheet shows them: the header is row 1 and the first data row is
row 2 (a cell holding a line break does not start a new row). JSON items, stored as CSV, are
numbered from 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from disbursement.domain import MAX_CELL, Problem

MAX_LINE = 64 * 1024
"""Bytes of one CSV line; a longer line is refused rather than buffered."""
MAX_COLUMNS = 64
MAX_XLSX_MEMBERS = 10_000
MAX_XLSX_UNCOMPRESSED = 2 * 1024**3
MAX_XLSX_RATIO = 200
"""How many times larger than its compressed size a workbook part may inflate (when over 1 MiB).
Sheet XML compresses 5 to 30 times; a zip bomb, thousands of times."""
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
SAVE_AS_UTF8 = "Save it from Excel with 'Save As' > 'CSV UTF-8 (Comma delimited) (*.csv)', or send the .xlsx."
_SEPARATORS = (",", ";", "\t")
_HEADER_SPACE = re.compile(r"[\s\-]+")


class FileProblem(Exception):
    """The file cannot be read as a table; ``code`` is stable, the message says what to do."""

    def __init__(self, code: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.row = row
        self.column = column


@dataclass(frozen=True)
class Columns:
    """The columns a kind of file has: some required, some optional."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        """Return every column name, required first."""
        return self.required + self.optional


@dataclass(frozen=True)
class Row:
    """One data row: its number in the file, its cells by column, and which were number cells."""

    number: int
    values: dict[str, str]
    numeric: frozenset[str] = frozenset()
    problems: tuple[Problem, ...] = ()


@dataclass
class Table:
    """An opened file: its format, its columns, notices about it, and its rows (read once)."""

    format: str
    columns: tuple[str | None, ...]
    warnings: list[Problem] = field(default_factory=list)
    _rows: Iterator[Row] = field(default_factory=lambda: iter(()))

    def __iter__(self) -> Iterator[Row]:
        return self._rows


def detect_format(head: bytes) -> str:
    """Tell from a file's first bytes whether it is ``xlsx`` or ``csv``; refuse what is neither."""
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if head.startswith(XLS_MAGIC):
        raise FileProblem(
            "file_format",
            "This is an Excel 97-2003 workbook (.xls), which is not read. Save it as .xlsx, or as CSV UTF-8.",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(
            "file_encoding",
            "The file is UTF-16 text (Excel's 'Unicode Text'); it must be UTF-8. " + SAVE_AS_UTF8,
        )
    if not head.strip():
        raise FileProblem("file_empty", "The file is empty.")
    return "csv"


def open_table(stream: IO[bytes], columns: Columns, *, first_row: int = 2) -> Table:
    """Open ``stream`` (CSV or XLSX, told apart by content) and check its header row.

    ``first_row`` is the number of the first data row (2 for files, 1 for JSON items).
    """
    head = stream.read(8)
    stream.seek(0)
    if detect_format(head) == "xlsx":
        return _open_xlsx(stream, columns)
    return _open_csv(stream, columns, first_row)


def normalize_header(name: str) -> str:
    """Return the canonical form of a header cell: lower case, words joined by ``_``."""
    return _HEADER_SPACE.sub("_", name.strip().lower()).strip("_")


def match_header(cells: list[str], columns: Columns) -> tuple[tuple[str | None, ...], list[Problem]]:
    """Map header cells to known columns; raise FileProblem for a missing, mistyped or repeated one.

    An unknown column that looks like no known one is ignored, with a warning; one that looks
    like a known column is taken for a typo and refused, so that a misspelt destination column
    is never silently dropped.
    """
    if len(cells) > MAX_COLUMNS:
        raise FileProblem("header_invalid", f"The header has {len(cells)} columns; at most {MAX_COLUMNS}.")
    known = columns.known
    mapped: list[str | None] = []
    warnings: list[Problem] = []
    seen: set[str] = set()
    for i, cell in enumerate(cells):
        name = normalize_header(cell)
        if not name:
            mapped.append(None)
            continue
        if name in known:
            if name in seen:
                raise FileProblem(
                    "column_duplicate", f"The column '{name}' appears twice in the header.", column=name
                )
            seen.add(name)
            mapped.append(name)
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            raise FileProblem(
                "column_unknown",
                f"Column {i + 1} of the header is '{_shown(cell)}', which is not a known column: "
                f"did you mean '{close[0]}'?",
                column=_shown(cell),
            )
        warnings.append(
            Problem("column_ignored", f"The column '{_shown(cell)}' is not one chopay reads; it is ignored.")
        )
        mapped.append(None)
    missing = [c for c in columns.required if c not in seen]
    if missing:
        found = ", ".join(f"'{_shown(c)}'" for c in cells if c.strip()) or "nothing"
        raise FileProblem(
            "column_missing",
            f"The header lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (it has {found}). "
            f"The columns are: {', '.join(known)}.",
            column=missing[0],
        )
    return tuple(mapped), warnings


def _shown(text: str) -> str:
    """Return header text safe to quote in a message: short and printable."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text.strip())
    return cleaned[:40] + ("..." if len(cleaned) > 40 else "")


# ---------------------------------------------------------------------------------------------
# CSV


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """Yield the decoded physical lines of ``stream``, refusing bytes that are not UTF-8."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            raise FileProblem(
                "row_unreadable", f"Line {number} is longer than {MAX_LINE // 1024} KiB; is this a CSV file?"
            )
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                "file_encoding",
                f"The file is not UTF-8: byte 0x{raw[exc.start]:02X} on line {number} is not valid "
                "UTF-8 (the file is probably in Windows-1258 or another legacy Vietnamese encoding). "
                + SAVE_AS_UTF8,
                row=number,
            ) from None


def _separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in _SEPARATORS}
    best = max(_SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _open_csv(stream: IO[bytes], columns: Columns, first_row: int) -> Table:
    lines = _lines(stream)
    header_line = ""
    for line in lines:
        if line.strip():
            header_line = line
            break
    if not header_line.strip():
        raise FileProblem("file_empty", "The file has no header row.")
    sep = _separator(header_line)
    try:
        header = next(csv.reader([header_line], delimiter=sep))
    except (csv.Error, StopIteration):
        raise FileProblem("header_invalid", "The header row cannot be read as CSV.") from None
    mapped, warnings = match_header(header, columns)
    return Table("csv", mapped, warnings, _csv_rows(lines, sep, mapped, first_row))


def _csv_rows(
    lines: Iterator[str], sep: str, mapped: tuple[str | None, ...], first_row: int
) -> Iterator[Row]:
    reader = csv.reader(lines, delimiter=sep)
    number = first_row - 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileProblem(
                "row_unreadable", f"Row {number + 1} is not valid CSV ({exc}).", row=number + 1
            ) from None
        number += 1
        row = _row(number, cells, mapped, frozenset())
        if row is not None:
            yield row


def _row(
    number: int, cells: list[Any], mapped: tuple[str | None, ...], numeric: frozenset[str]
) -> Row | None:
    """Build a Row from its cells; None for a blank row. Cells beyond the header must be blank."""
    values: dict[str, str] = {}
    blank = True
    beyond = False
    for i, cell in enumerate(cells):
        text = cell.strip() if isinstance(cell, str) else ""
        if text:
            blank = False
        if i < len(mapped):
            name = mapped[i]
            if name is not None:
                values[name] = text
        elif text:
            beyond = True
    if blank:
        return None
    for name in mapped:
        if name is not None:
            values.setdefault(name, "")
    problems: tuple[Problem, ...] = ()
    if beyond:
        problems = (
            Problem(
                "row_too_many_cells",
                f"The row has a value beyond the header's {len(mapped)} columns; a separator is "
                "probably missing or doubled.",
            ),
        )
    return Row(number, values, numeric, problems)


# ---------------------------------------------------------------------------------------------
# XLSX


def _check_archive(stream: IO[bytes]) -> None:
    """Refuse a workbook that is not a zip, or whose parts would inflate beyond the limits."""
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise FileProblem(
            "xlsx_unreadable", "The file looks like an .xlsx workbook but is damaged."
        ) from None
    if len(members) > MAX_XLSX_MEMBERS:
        raise FileProblem(
            "xlsx_too_large", f"The workbook has {len(members)} parts; at most {MAX_XLSX_MEMBERS}."
        )
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise FileProblem(
            "xlsx_too_large",
            f"The workbook would inflate to {total:,} bytes; at most {MAX_XLSX_UNCOMPRESSED:,} are read.",
        )
    for m in members:
        if m.file_size > 1024 * 1024 and m.file_size > MAX_XLSX_RATIO * max(m.compress_size, 1):
            raise FileProblem(
                "xlsx_too_large",
                f"The workbook part {m.filename!r} inflates {m.file_size // max(m.compress_size, 1):,} "
                "times its size: it is refused as a zip bomb.",
            )
    stream.seek(0)


def _cell_text(value: Any) -> tuple[str, bool]:
    """Return a cell's text and whether it was a number cell."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        return (str(int(value)) if value.is_integer() and abs(value) < 1e19 else repr(value)), True
    if isinstance(value, dt.datetime):
        return value.date().isoformat(), False
    if isinstance(value, dt.date):
        return value.isoformat(), False
    if isinstance(value, dt.time | dt.timedelta):
        return str(value), False
    return str(value)[: MAX_CELL + 1], False


def _open_xlsx(stream: IO[bytes], columns: Columns) -> Table:
    from openpyxl import load_workbook

    _check_archive(stream)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
        names = list(workbook.sheetnames)
        if not names:
            raise FileProblem("xlsx_no_sheet", "The workbook has no sheet.")
        sheet = workbook[names[0]]
        sheet.reset_dimensions()  # stored dimensions can be wrong; read every row there is
        rows = sheet.iter_rows(values_only=True)
        header = _first_nonblank(rows)
    except FileProblem:
        raise
    except Exception as exc:  # openpyxl raises anything on a damaged workbook: KeyError, ParseError...
        raise FileProblem(
            "xlsx_unreadable", f"The workbook cannot be read ({type(exc).__name__}); is it damaged?"
        ) from None
    warnings: list[Problem] = []
    if len(names) > 1:
        warnings.append(
            Problem(
                "xlsx_several_sheets",
                f"The workbook has {len(names)} sheets ({', '.join(repr(_shown(n)) for n in names)}); "
                f"only the first, {_shown(names[0])!r}, is read.",
            )
        )
    if header is None:
        raise FileProblem("file_empty", f"The sheet {_shown(names[0])!r} has no header row.")
    number, cells = header
    mapped, header_warnings = match_header([_cell_text(c)[0] for c in cells], columns)
    return Table("xlsx", mapped, warnings + header_warnings, _xlsx_rows(rows, mapped, number))


def _first_nonblank(rows: Iterator[tuple[Any, ...]]) -> tuple[int, tuple[Any, ...]] | None:
    for number, cells in enumerate(rows, start=1):
        if any(_cell_text(c)[0].strip() for c in cells):
            return number, cells
    return None


def _xlsx_rows(
    rows: Iterator[tuple[Any, ...]], mapped: tuple[str | None, ...], header_row: int
) -> Iterator[Row]:
    number = header_row
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # a damaged sheet part fails only when the parser reaches it
            raise FileProblem(
                "xlsx_unreadable",
                f"The workbook cannot be read past row {number} ({type(exc).__name__}); is it damaged?",
                row=number + 1,
            ) from None
        number += 1
        texts: list[str] = []
        numeric: set[str] = set()
        for i, cell in enumerate(cells):
            text, is_number = _cell_text(cell)
            texts.append(text)
            if is_number and i < len(mapped) and mapped[i] is not None:
                numeric.add(mapped[i])  # type: ignore[arg-type]
        row = _row(number, texts, mapped, frozenset(numeric))
        if row is not None:
            yield row


def csv_bytes(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    """Write ``rows`` as UTF-8 CSV with a header of ``columns`` (how JSON items are stored)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return out.getvalue().encode()
