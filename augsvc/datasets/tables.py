"""Text datasets stored as tables: CSV or TSV with a header row, JSON Lines, Parquet.

Each row gives a text and a label from two named columns (``text_column``, default "text", and
``label_column``, default "label"); every other column is ignored. Labels are class names
(strings: the classes are the sorted distinct names, as in ``label<TAB>text`` files) or
integers >= 0 (the classes are "0", "1", ... up to the largest). Problems are
:class:`InputError` naming the file and the row: its line for CSV, TSV and JSON Lines, its
index (from 0) for Parquet.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from augsvc.datasets.base import TextDataset
from augsvc.errors import InputError

__all__ = ["TABLE_SUFFIXES", "load_text_table"]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
"""The suffixes :func:`load_text_table` reads (any case)."""

_MAX_CLASSES = 1_000_000  # integer labels name classes "0".."max": a stray huge label is an error
_KINDS = {".csv": "CSV file", ".tsv": "TSV file", ".jsonl": "JSON Lines file", ".parquet": "Parquet file"}


def load_text_table(path: str | Path, *, text_column: str = "text",
                    label_column: str = "label") -> TextDataset:
    """A text dataset from a table file, read by its suffix.

    - ``.csv``: UTF-8 (a leading BOM is allowed), comma-separated, a header row first, quoted
      fields as the ``csv`` module reads them (commas, quotes doubled, newlines inside quotes).
      A row must have as many fields as the header.
    - ``.tsv``: the same with tabs and no quoting (a field holds no tab or newline), as in the
      GLUE files. (``open_dataset`` reads a ``.tsv`` this way only when given a column option;
      without one it is ``label<TAB>text`` lines.)
    - ``.jsonl``: UTF-8, one JSON object per line; blank lines are skipped.
    - ``.parquet``: only the two columns are read (pyarrow).

    In CSV and TSV files blank lines (rows whose every field is blank) are skipped, and labels
    are integers when every label is written in digits only, class names otherwise. In every
    format labels have surrounding spaces removed; texts are kept as they are.

    Args:
        path: the file.
        text_column: the column (JSON key) holding the texts.
        label_column: the column (JSON key) holding the labels.

    Raises:
        InputError: the file cannot be read or parsed, a column is missing (the message lists the
            ones the file has), a row has an empty text or label or a label that is neither a
            string nor an integer >= 0, labels mix strings and integers, or there are no rows.
    """
    path = Path(path)
    for option, value in (("text_column", text_column), ("label_column", label_column)):
        if not isinstance(value, str) or not value:
            raise InputError(f"{option} must be a column name, got {value!r}")
    if text_column == label_column:
        raise InputError(f"text_column and label_column are both {text_column!r}")
    suffix = path.suffix.lower()
    if suffix not in _KINDS:
        raise InputError(f"{path}: a text table must be one of {', '.join(TABLE_SUFFIXES)}")
    if suffix == ".parquet":
        rows = _read_parquet(path, text_column, label_column)
    elif suffix == ".jsonl":
        rows = _read_jsonl(path, text_column, label_column)
    else:
        rows = _read_delimited(path, text_column, label_column, tab=suffix == ".tsv")
    return rows.dataset(f"{_KINDS[suffix]} {path}")


class _Rows:
    """Texts and labels as they are read, checked row by row; the row numbers for messages."""

    def __init__(self, path: Path, unit: str) -> None:
        self.path = path
        self.unit = unit  # "line" or "row index"
        self.texts: list[str] = []
        self.labels: list[int | str] = []
        self.numbers: list[int] = []

    def error(self, number: int, message: str) -> InputError:
        return InputError(f"{self.path}, {self.unit} {number}: {message}")

    def add(self, number: int, text: Any, label: Any) -> None:
        if label is None:
            raise self.error(number, "missing label")
        if isinstance(label, str):
            label = label.strip()
            if not label:
                raise self.error(number, "empty label")
        elif isinstance(label, bool) or not isinstance(label, int):
            raise self.error(number, f"a label must be a string or an integer, got {_show(label)}")
        else:
            label = self.class_index(number, label)
        if text is None or (isinstance(text, str) and not text.strip()):
            raise self.error(number, "empty text")
        if not isinstance(text, str):
            raise self.error(number, f"a text must be a string, got {_show(text)}")
        self.texts.append(text)
        self.labels.append(label)
        self.numbers.append(number)

    def class_index(self, number: int, label: int, written: str = "") -> int:
        if not 0 <= label < _MAX_CLASSES:
            shown = written or str(label)
            shown = shown if len(shown) <= 20 else shown[:17] + "..."
            raise self.error(number, f"integer label {shown} is not in 0..{_MAX_CLASSES - 1}")
        return label

    def digits_as_integers(self) -> None:
        """Labels written in digits only, every one of them, become integers (CSV and TSV)."""
        if all(isinstance(label, str) and label.isascii() and label.isdigit() for label in self.labels):
            for i, label in enumerate(self.labels):
                digits = str(label).lstrip("0") or "0"  # int() refuses 4300+ digits: check the length
                value = int(digits) if len(digits) <= len(str(_MAX_CLASSES)) else _MAX_CLASSES
                self.labels[i] = self.class_index(self.numbers[i], value, str(label))

    def dataset(self, what: str) -> TextDataset:
        if not self.texts:
            raise InputError(f"{self.path} has no rows")
        ints = [label for label in self.labels if isinstance(label, int)]
        names = [label for label in self.labels if isinstance(label, str)]
        if not names:
            class_names = [str(i) for i in range(max(ints) + 1)]
            labels = ints
        elif not ints:
            class_names = sorted(set(names))
            index = {name: i for i, name in enumerate(class_names)}
            labels = [index[name] for name in names]
        else:
            first_int = next(i for i, label in enumerate(self.labels) if isinstance(label, int))
            first_str = next(i for i, label in enumerate(self.labels) if isinstance(label, str))
            raise InputError(f"{self.path}: labels mix integers ({self.unit} {self.numbers[first_int]}: "
                             f"{self.labels[first_int]!r}) and strings ({self.unit} "
                             f"{self.numbers[first_str]}: {self.labels[first_str]!r})")
        return TextDataset(self.texts, labels, class_names, name=str(self.path),
                           description=f"{what}: {len(self.texts)} texts in {len(class_names)} classes")


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _missing(path: Path, column: str, columns: list[str]) -> InputError:
    has = ", ".join(repr(c) for c in columns) if columns else "none"
    return InputError(f"{path}: no column {column!r}; the file has columns {has}")


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1)
        raise InputError(f"{path}, line {line}: not valid UTF-8 ({exc.reason} at byte {column})") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_delimited(path: Path, text_column: str, label_column: str, *, tab: bool) -> _Rows:
    text = _decode(path, _read_bytes(path))
    if tab:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _Rows(path, "line")
    header: list[str] | None = None
    picks = (0, 0)
    while True:
        start = reader.line_num + 1  # a quoted field may run over several lines: name the first
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise rows.error(start, f"bad {'TSV' if tab else 'CSV'} ({exc})") from None
        if all(not field.strip() for field in row):
            continue
        if header is None:
            header = [field.strip() for field in row]
            picks = (_column(path, header, text_column), _column(path, header, label_column))
            continue
        if len(row) != len(header):
            raise rows.error(start, f"{len(row)} fields, the header has {len(header)}")
        rows.add(start, row[picks[0]], row[picks[1]])
    if header is None:
        raise InputError(f"{path} is empty; expected a header row naming the columns "
                         f"{text_column!r} and {label_column!r}")
    rows.digits_as_integers()
    return rows


def _column(path: Path, header: list[str], column: str) -> int:
    if column not in header:
        raise _missing(path, column, header)
    if header.count(column) > 1:
        raise InputError(f"{path}: the header names the column {column!r} {header.count(column)} times")
    return header.index(column)


def _read_jsonl(path: Path, text_column: str, label_column: str) -> _Rows:
    data = _read_bytes(path).removeprefix(b"\xef\xbb\xbf")
    rows = _Rows(path, "line")
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise rows.error(number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise rows.error(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:  # a number of 4300+ digits; nested too deeply
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise rows.error(number, f"not valid JSON ({reason})") from None
        if not isinstance(value, dict):
            raise rows.error(number, f"not a JSON object (a {type(value).__name__}); expected one "
                                     "object per line")
        for key in (text_column, label_column):
            if key not in value:
                keys = ", ".join(repr(k) for k in value) if value else "none"
                raise rows.error(number, f"no key {key!r}; the object has keys {keys}")
        rows.add(number, value[text_column], value[label_column])
    return rows


def _read_parquet(path: Path, text_column: str, label_column: str) -> _Rows:
    import pyarrow as pa  # only for Parquet: importing the datasets stays light
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        for column in (text_column, label_column):
            if column not in schema.names:
                raise _missing(path, column, list(schema.names))
        table = pq.read_table(path, columns=[text_column, label_column])
    except (OSError, ValueError, pa.ArrowException) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {path} as Parquet: {exc}") from None
    for column, allowed in ((text_column, "strings"), (label_column, "strings or integers")):
        kind = table.schema.field(column).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        is_text = pa.types.is_string(kind) or pa.types.is_large_string(kind) \
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind))
        if not is_text and not (column == label_column and pa.types.is_integer(kind)):
            raise InputError(f"{path}: column {column!r} holds {kind}; expected {allowed}")
    rows = _Rows(path, "row index")
    texts = table.column(text_column).to_pylist()
    labels = table.column(label_column).to_pylist()
    for number, (text, label) in enumerate(zip(texts, labels, strict=True)):
        rows.add(number, text, label)
    return rows
