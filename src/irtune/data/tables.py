"""Rows of the files people keep retrieval data in: CSV, TSV, JSONL, JSON, parquet and a
Hugging Face `save_to_disk` folder, each row with where a user finds it.

CSV/TSV go through the standard library's csv module rather than pyarrow's reader: pyarrow
does not say on which line a bad row sits, and an error naming the line is the contract
(quoted fields with newlines still count as the lines they span). Parquet is read with
pyarrow in record batches, a saved dataset with `datasets`, so neither is loaded whole.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irtune.errors import DataError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
CSV_FIELD_LIMIT = 2**31 - 1  # documents are long; the csv module's default cap is 128 KiB


def table_format(path: Path) -> str:
    """`csv`, `tsv`, `jsonl`, `json`, `parquet` (by suffix, `.gz` allowed for text formats) or
    `hf` (a folder written by `datasets.Dataset.save_to_disk`)."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = ", ".join(sorted(p.name for p in path.iterdir() if p.is_dir())) or "none"
            raise DataError(
                path, f"a saved DatasetDict (splits: {splits}): give one split's folder, e.g. {path}/train"
            )
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            return "hf"
        raise DataError(path, "a folder that is not a saved Hugging Face dataset")
    try:
        path.stat()
    except OSError as exc:
        raise DataError(path, _unreachable(path, exc)) from None
    if not path.is_file():
        raise DataError(path, "not a regular file (a device, FIFO or socket cannot be read as a table)")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and FORMATS.get(suffixes[-1]) == "parquet":
            raise DataError(path, "parquet files are compressed inside; do not gzip them")
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DataError(path, f"unknown file type (known: {known}, .gz for text formats, or a saved dataset)")
    return fmt


def _unreachable(path: Path, exc: OSError) -> str:
    """Why `path` cannot be opened: a missing file (maybe behind a dangling link), a loop of
    symbolic links, a folder that cannot be searched."""
    if exc.errno != errno.ENOENT:
        return f"cannot be opened ({(exc.strerror or str(exc)).lower()})"
    if path.is_symlink():
        return f"file not found (a symbolic link to {os.readlink(path)})"
    return "file not found"


@dataclass(frozen=True)
class Where:
    """A row's position: its first line in a text file, else its 1-based row number."""

    row: int
    line: int | None = None

    def error(self, path: Path, problem: str) -> DataError:
        if self.line is not None:
            return DataError(path, problem, self.line)
        return DataError(path, f"row {self.row}: {problem}")


@dataclass(frozen=True)
class Table:
    path: Path
    format: str
    columns: tuple[str, ...]

    def rows(self) -> Iterator[tuple[Where, dict[str, Any]]]:
        readers = {
            "csv": _csv_rows,
            "tsv": _csv_rows,
            "jsonl": _jsonl_rows,
            "json": _json_rows,
            "parquet": _parquet_rows,
            "hf": _hf_rows,
        }
        return readers[self.format](self)


def open_table(path: Path | str) -> Table:
    """The table at `path` with its column names (read from the header, schema or first rows)."""
    path = Path(path)
    fmt = table_format(path)
    probe = Table(path, fmt, ())
    if fmt in ("csv", "tsv"):
        columns = _csv_header(probe)
    elif fmt == "parquet":
        columns = tuple(_parquet_file(path).schema_arrow.names)
    elif fmt == "hf":
        columns = tuple(_hf_dataset(path).column_names)
    else:
        seen: dict[str, None] = {}
        for _, row in probe.rows():
            seen.update(dict.fromkeys(row))
        columns = tuple(seen)
    return Table(path, fmt, columns)


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")  # noqa: SIM115
    # utf-8-sig: spreadsheet exports start with a byte-order mark
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _decode_guard(path: Path, exc: Exception) -> DataError:
    if isinstance(exc, UnicodeDecodeError):
        # text is decoded in chunks, ahead of the parser: find the line from the bytes
        return DataError(path, f"not valid UTF-8 ({exc.reason})", _first_bad_utf8_line(path))
    if isinstance(exc, gzip.BadGzipFile | EOFError):
        return DataError(path, f"not a valid gzip file ({exc})")
    return DataError(path, f"cannot read file ({exc})")


def _csv_reader(table: Table, handle: io.TextIOBase) -> Any:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    if table.format == "tsv":  # tab-separated values carry no quoting: a leading '"' is text
        return csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
    return csv.reader(handle, delimiter=",", strict=True)


def _csv_header(table: Table) -> tuple[str, ...]:
    try:
        with _open_text(table.path) as handle:
            reader = _csv_reader(table, handle)
            for header in reader:
                if any(cell.strip() for cell in header):
                    return _checked_header(table.path, [c.strip() for c in header], reader.line_num)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _decode_guard(table.path, exc) from None
    except csv.Error as exc:
        raise DataError(table.path, f"malformed {table.format.upper()} header ({exc})", 1) from None
    raise DataError(table.path, "empty file (no header row)")


def _first_bad_utf8_line(path: Path) -> int | None:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _checked_header(path: Path, header: list[str], line: int) -> tuple[str, ...]:
    for index, name in enumerate(header):
        if not name:
            raise DataError(path, f"header column {index + 1} has no name", line)
        if name in header[:index]:
            raise DataError(path, f'header names column "{name}" twice', line)
    return tuple(header)


def _csv_rows(table: Table) -> Iterator[tuple[Where, dict[str, Any]]]:
    line = 0
    try:
        with _open_text(table.path) as handle:
            reader = _csv_reader(table, handle)
            header: tuple[str, ...] | None = None
            row_number = 0
            while True:
                line = reader.line_num + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                if not any(cell.strip() for cell in cells):
                    continue
                if header is None:
                    header = tuple(c.strip() for c in cells)
                    continue
                row_number += 1
                if len(cells) != len(header):
                    raise DataError(
                        table.path,
                        f"expected {len(header)} fields (as in the header), found {len(cells)}",
                        line,
                    )
                yield Where(row_number, line), dict(zip(header, cells, strict=True))
    except csv.Error as exc:
        raise DataError(table.path, f"malformed {table.format.upper()} ({exc})", line) from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _decode_guard(table.path, exc) from None


def _jsonl_rows(table: Table) -> Iterator[tuple[Where, dict[str, Any]]]:
    number = 0
    try:
        with _open_text(table.path) as handle:
            row = 0
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        table.path, f"malformed JSON ({exc.msg} at column {exc.colno})", number
                    ) from None
                if not isinstance(record, dict):
                    raise DataError(table.path, "expected a JSON object", number)
                row += 1
                yield Where(row, number), record
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _decode_guard(table.path, exc) from None


def _json_rows(table: Table) -> Iterator[tuple[Where, dict[str, Any]]]:
    try:
        with _open_text(table.path) as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(table.path, f"malformed JSON ({exc.msg} at column {exc.colno})", exc.lineno) from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _decode_guard(table.path, exc) from None
    if not isinstance(data, list):
        raise DataError(
            table.path, "expected a JSON array of objects (one per row); for one object per line use .jsonl"
        )
    for index, record in enumerate(data, start=1):
        where = Where(index)
        if not isinstance(record, dict):
            raise where.error(table.path, "expected a JSON object")
        yield where, record


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(path, f"not a readable parquet file ({exc})") from None


def _parquet_rows(table: Table) -> Iterator[tuple[Where, dict[str, Any]]]:
    import pyarrow as pa

    row = 0
    try:
        for batch in _parquet_file(table.path).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                row += 1
                yield Where(row), record
    except (pa.ArrowException, OSError) as exc:
        raise DataError(table.path, f"row {row + 1}: cannot read parquet ({exc})") from None


def _hf_dataset(path: Path) -> Any:
    from datasets import Dataset, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot load the saved dataset ({exc})") from None
    if not isinstance(dataset, Dataset):
        raise DataError(path, "a saved DatasetDict: give one split's folder")
    return dataset


def _hf_rows(table: Table) -> Iterator[tuple[Where, dict[str, Any]]]:
    for row, record in enumerate(_hf_dataset(table.path), start=1):
        yield Where(row), record
