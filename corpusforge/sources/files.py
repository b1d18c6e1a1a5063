"""Files by glob, local or at an fsspec URL (``s3://bucket/crawl/*.jsonl.zst``): jsonl (+ .gz/.zst/.bz2/.xz),
parquet, csv, txt (a doc per line or per file), Arrow IPC."""

from __future__ import annotations

import bz2
import csv
import glob as globlib
import gzip
import io
import lzma
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from corpusforge import storage
from corpusforge.data import builtin_data_dir
from corpusforge.errors import SourceError
from corpusforge.recipe.models import BUILTIN_PREFIX
from corpusforge.sources.records import RecordReader

COMPRESSIONS = (".gz", ".zst", ".zstd", ".bz2", ".xz")
FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "txt",
    ".arrow": "arrow",
    ".ipc": "arrow",
    ".feather": "arrow",
}


def expand_glob(pattern: str) -> list[str]:
    """Sorted files matching one pattern (a local glob or an fsspec URL glob); ``builtin:NAME`` refers to
    corpusforge's bundled samples."""
    if pattern.startswith(BUILTIN_PREFIX):
        pattern = str(builtin_data_dir() / pattern[len(BUILTIN_PREFIX) :])
    if storage.is_url(pattern):
        return storage.glob_url(pattern)
    matches = globlib.glob(str(storage.local_path(pattern)), recursive=True)
    return sorted(m for m in matches if os.path.isfile(m))


def resolve_files(globs: str | list[str]) -> list[str]:
    patterns = [globs] if isinstance(globs, str) else list(globs)
    files: list[str] = []
    for pattern in patterns:
        try:
            matched = expand_glob(pattern)
        except SourceError:
            raise
        except Exception as err:  # a remote store that refuses (credentials, no such bucket, unreachable)
            raise SourceError(f"cannot list '{pattern}': {type(err).__name__}: {err}") from None
        if not matched:
            where = "" if storage.is_url(pattern) else f" (cwd={Path.cwd()})"
            raise SourceError(f"no file matches '{pattern}'{where}")
        files.extend(f for f in matched if f not in files)
    return files


def file_format(path: str | Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS.get(Path(plain_name(path)).suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: cannot tell the format from the extension; set `format:` in the source")
    return fmt


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """Open a file (local, or an fsspec URL) for reading bytes, decompressing by extension."""
    name = storage.basename(path).lower()
    if not storage.is_url(path):
        path = storage.local_path(path)
        if name.endswith(".gz"):
            return gzip.open(path, "rb")
        if name.endswith(".bz2"):
            return bz2.open(path, "rb")
        if name.endswith(".xz"):
            return lzma.open(path, "rb")
    raw = storage.open_file(path, "rb")
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    opener = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}.get(os.path.splitext(name)[1])
    if opener is None:
        return raw
    f = opener(raw, mode="rb") if opener is not gzip.GzipFile else opener(fileobj=raw, mode="rb")
    close = f.close

    def close_both():  # the decompressor does not close a file object it was given
        close()
        raw.close()

    f.close = close_both
    return f


class UnreadableFile(Exception):
    """A file that fails partway through (truncated, corrupt, gone): its task fails, and the message that reaches the
    build's failure (the end of the task's log) names the file. Not a SourceError: that one stops the build before
    it starts; this one is raised in a task, after rows of the file were read."""


def _naming(path: str, docs: Iterator) -> Iterator:
    """``docs``, read from ``path``; an error while reading or decompressing is raised again naming the file."""
    while True:
        try:
            doc = next(docs)
        except StopIteration:
            return
        except EOFError as err:  # gzip, bz2, xz: the stream ends before its end marker
            raise UnreadableFile(f"{path}: the file is truncated ({err})") from err
        except Exception as err:
            raise UnreadableFile(f"{path}: cannot be read: {type(err).__name__}: {err}") from err
        yield doc


def _decode_line(raw: bytes) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        return None, f"invalid UTF-8 at byte {err.start}"


class FileReader(RecordReader):
    """Reads one recipe source's files; task ``rank`` reads files ``rank, rank + world_size, …``."""

    name = "files"

    def __init__(
        self,
        source_name: str,
        files: list[str],
        base_dir: str,
        fmt: str,
        text_field: str,
        id_field: str | None,
        fields: list[str],
        txt_unit: str = "line",
        limit: int | None = None,
        progress_dir: str | None = None,
        source_index: int | None = None,
    ):
        super().__init__(source_name, text_field, id_field, fields, limit, progress_dir, source_index)
        self.files = list(files)
        self.base_dir = base_dir
        self.fmt = fmt
        self.txt_unit = txt_unit
        self._stride: tuple[int, int] | None = None

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        yield from self.limited(self._read_shard(rank, world_size))

    def _read_shard(self, rank: int, world_size: int):
        # Fewer files than tasks: every task reads every file and keeps rows rank, rank + world_size, … so the
        # tasks stay balanced. Otherwise tasks split the files.
        by_rows = len(self.files) < world_size
        indices = range(len(self.files)) if by_rows else range(rank, len(self.files), world_size)
        self._stride = (rank, world_size) if by_rows else None
        bytes_done = 0
        for self.file_index in indices:
            path = self.files[self.file_index]
            self.stat_update("input_files")
            rel = storage.relative(path, self.base_dir)
            for doc in _naming(path, self._documents(path, rel, file_format(path, self.fmt))):
                yield doc
                self.report_progress(rank)
            bytes_done += storage.file_info(path)["bytes"] // (world_size if by_rows else 1)
            self.report_progress(rank, bytes_done, force=True)

    def _mine(self, row: int) -> bool:
        """Whether this task reads row ``row`` (1-based) of a file shared by all tasks."""
        return self._stride is None or (row - 1) % self._stride[1] == self._stride[0]

    def _doc_id(self, rel: str, row: int) -> str:
        return f"{self.source_name}/{rel}/{row}"

    def _documents(self, path: str, rel: str, fmt: str) -> Iterator:
        wanted = [self.text_field, *(self.fields or [])] + ([self.id_field] if self.id_field else [])
        rows = iter_rows(
            path,
            fmt,
            self.bad_row,
            columns=wanted,
            wanted=self._mine,
            text_field=self.text_field,
            txt_unit=self.txt_unit,
        )
        for row_no, where, row in rows:
            doc = self.make_document(row, where, self._doc_id(rel, row_no), row_no)
            if doc is not None:
                yield doc


# --------------------------------------------------------------------------------------------- one file's records
BadRow = Callable[[str, str, str], None]  # (reason, where, message): a row that cannot be read, skipped


def _every(row: int) -> bool:
    return True


def iter_rows(
    path: str,
    fmt: str,
    bad: BadRow,
    *,
    columns: list[str] | None = None,
    wanted: Callable[[int], bool] = _every,
    text_field: str = "text",
    txt_unit: str = "line",
) -> Iterator[tuple[int, str, dict]]:
    """``(row number, where, record)`` of every record of one file, in order — the one reader of a data file's
    records, for the sources and for the files steps read (eval sets). jsonl: an object a line (a ``.json`` file
    holding one array of objects is read as that array); csv/tsv: a row each; parquet (only ``columns``, those of
    them it has) and Arrow IPC: a row each; txt: ``{text_field: line}`` a line, or the whole file as one record
    (row 0) with ``txt_unit="file"``. Row numbers start at 1 (lines for jsonl and txt). A row ``wanted`` says no to
    is skipped unread (a task reading every other row); one that cannot be read goes to ``bad(reason, where,
    message)`` — `invalid_utf8`, `malformed_json`, `malformed_csv` — and is skipped."""
    if fmt == "jsonl":
        yield from _jsonl_rows(path, bad, wanted)
    elif fmt == "txt":
        yield from _txt_rows(path, bad, wanted, text_field, txt_unit)
    elif fmt == "csv":
        yield from (r for r in _csv_rows(path, bad) if wanted(r[0]))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with open_binary(path) as f:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            chosen = None if columns is None else [c for c in dict.fromkeys(columns) if c in names]
            yield from _batch_rows(pf.iter_batches(batch_size=1000, columns=chosen), path, wanted)
    else:  # arrow
        yield from _batch_rows(read_ipc_batches(path), path, wanted)


def _jsonl_rows(path: str, bad: BadRow, wanted: Callable[[int], bool]) -> Iterator[tuple[int, str, dict]]:
    with open_binary(path) as f:
        if plain_name(path).lower().endswith(".json"):
            data = f.read()
            if data.lstrip()[:1] == b"[":  # one array of records
                try:
                    items = orjson.loads(data)
                except orjson.JSONDecodeError as err:
                    bad("malformed_json", str(path), f"malformed JSON: {err}")
                    return
                for n, item in enumerate(items, 1):
                    if wanted(n) and isinstance(item, dict):
                        yield n, f"{path}:item {n}", item
                return
            lines = iter(data.splitlines())
        else:
            lines = f
        for lineno, raw in enumerate(lines, 1):
            if not wanted(lineno) or not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                _, utf8_problem = _decode_line(raw)
                if utf8_problem:
                    bad("invalid_utf8", where, utf8_problem)
                else:
                    bad("malformed_json", where, f"malformed JSON: {err}")
                continue
            if not isinstance(row, dict):
                bad("malformed_json", where, f"expected a JSON object, got {type(row).__name__}")
                continue
            yield lineno, where, row


def _txt_rows(
    path: str, bad: BadRow, wanted: Callable[[int], bool], text_field: str, txt_unit: str
) -> Iterator[tuple[int, str, dict]]:
    with open_binary(path) as f:
        if txt_unit == "file":
            text, problem = _decode_line(f.read())
            if problem:
                bad("invalid_utf8", str(path), problem)
                return
            yield 0, str(path), {text_field: text}
            return
        for lineno, raw in enumerate(f, 1):
            if not wanted(lineno):
                continue
            text, problem = _decode_line(raw.rstrip(b"\r\n"))
            if problem:
                bad("invalid_utf8", f"{path}:{lineno}", problem)
                continue
            if text.strip():  # blank lines separate nothing in line mode; not an error
                yield lineno, f"{path}:{lineno}", {text_field: text}


def _csv_rows(path: str, bad: BadRow) -> Iterator[tuple[int, str, dict]]:
    delimiter = "\t" if ".tsv" in storage.basename(path).lower() else ","
    with open_binary(path) as f:
        reader = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", newline=""), delimiter=delimiter)
        row_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as err:
                bad("invalid_utf8", f"{path}:{reader.line_num + 1}", f"{err}; rest of file skipped")
                return
            except csv.Error as err:
                bad("malformed_csv", f"{path}:{reader.line_num}", str(err))
                continue
            row_no += 1
            yield row_no, f"{path}:{reader.line_num}", row


def _batch_rows(batches, path: str, wanted: Callable[[int], bool]) -> Iterator[tuple[int, str, dict]]:
    rows = (row for batch in batches for row in batch.to_pylist())
    yield from ((n, f"{path}:row {n}", row) for n, row in enumerate(rows, 1) if wanted(n))


def plain_name(path: str | Path) -> str:
    """The file's name without its compression suffix (`data.json.gz` → `data.json`)."""
    name = storage.basename(path)
    for comp in COMPRESSIONS:
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    return name


def _open_ipc(path: str):
    """A local file memory-mapped; a remote one through fsspec (seekable)."""
    import pyarrow as pa

    return storage.open_file(path, "rb") if storage.is_url(path) else pa.memory_map(str(storage.local_path(path)))


def read_ipc_batches(path: str):
    """Record batches of an Arrow IPC file in either the file or the streaming format."""
    import pyarrow as pa

    with _open_ipc(path) as source:
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            batches = pa.ipc.open_stream(source)
        yield from batches


def peek_fields(path: str, fmt: str) -> list[str] | None:
    """Field names of the first record (None when the format has no fields, e.g. txt)."""
    import pyarrow as pa

    if fmt == "txt":
        return None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with open_binary(path) as f:
            return pq.ParquetFile(f).schema_arrow.names
    if fmt == "arrow":
        with _open_ipc(path) as source:
            try:
                return pa.ipc.open_file(source).schema.names
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_stream(source).schema.names
    if fmt == "csv":
        with open_binary(path) as f:
            first = f.readline().decode("utf-8", errors="replace")
        delimiter = "\t" if ".tsv" in storage.basename(path).lower() else ","
        return next(csv.reader([first], delimiter=delimiter), [])
    first = next(iter_rows(path, fmt, lambda *_: None), None)  # jsonl: the first parseable object
    return list(first[2]) if first else []
