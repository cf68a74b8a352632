"""Bulk case files (``zhili import-cases``): CSV (UTF-8, UTF-8 with BOM or GB18030, as older
Chinese systems export) or JSON lines, read in chunks and sent through the one intake
pipeline (``api.services.cases.ingest_frame``), a chunk of 10,000 rows per transaction; on
PostgreSQL two chunks are stored at once, by two connections, while the next is read.

Columns are the API's field names; Chinese headers of common exports are understood
(事件编号, 报告时间, 类别, 经度, 纬度, ...) and ``mapping`` renames any other. Columns that map
to no field are ignored and never read, so a complainant's name or phone in a legacy file
goes nowhere. Each bad row is reported with its line number and reason; good rows land;
re-running a file changes nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.services.cases import FRAME_COLUMNS, IngestReport, ingest_frame
from api.services.local_time import local_zone

CHUNK_ROWS = 10_000  # rows per transaction: a 20,000-row file already keeps two writers busy
WRITERS = 2  # chunks stored at once on PostgreSQL (one connection and core each)
# Common headers of Chinese case exports → field names (``mapping`` adds or overrides).
HEADER_ALIASES = {
    "来源": "source",
    "来源系统": "source",
    "事件编号": "external_id",
    "工单编号": "external_id",
    "编号": "external_id",
    "类别": "category",
    "事件类别": "category",
    "渠道": "channel",
    "受理渠道": "channel",
    "报告时间": "reported_at",
    "上报时间": "reported_at",
    "受理时间": "reported_at",
    "经度": "lon",
    "纬度": "lat",
    "坐标系": "crs",
    "网格编码": "unit_code",
    "村社区编码": "unit_code",
    "单位编码": "unit_code",
    "事件描述": "description",
    "描述": "description",
    "办理期限": "deadline",
    "截止时间": "deadline",
}
_ZONE_SUFFIX = re.compile(r"(?:[Zz]|[+-]\d{2}:?\d{2})$")


@dataclass
class ImportSummary:
    """What a file import did."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line, external_id, why


class ImportStopped(RuntimeError):
    """The import stopped before the end of the file (the database went away, a chunk
    failed, the file could not be read further). ``summary`` counts what was stored
    before: every chunk committed, none of the chunk that failed."""

    def __init__(self, summary: ImportSummary, reason: str) -> None:
        super().__init__(reason)
        self.summary = summary
        self.reason = reason


def _why(exc: BaseException) -> str:
    """A failure in one line a person can act on (a database error by its own message)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    first = text_.splitlines()[0] if text_ else type(exc).__name__
    if isinstance(exc, ValueError | LookupError | UnicodeError):
        return first
    return f"{type(orig or exc).__name__}: {first}"


def guess_format(path: Path) -> str:
    """``jsonl`` for .jsonl, .ndjson or .json files, else ``csv``."""
    return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` when the file decodes as such, else ``gb18030``."""
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


def column_map(header: list[str], mapping: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Header → field for the columns that map to a field, and the ignored headers.
    Raises ValueError for a mapping to an unknown field or two columns on one field."""
    unknown = sorted(set(mapping.values()) - set(FRAME_COLUMNS))
    if unknown:
        raise ValueError(
            f"--map to unknown field(s) {', '.join(unknown)}: use {', '.join(FRAME_COLUMNS)}"
        )
    used: dict[str, str] = {}
    ignored = []
    for name in header:
        clean = name.strip().lstrip("\ufeff")
        target = mapping.get(clean) or (clean if clean in FRAME_COLUMNS else None)
        target = target or HEADER_ALIASES.get(clean)
        if target is None:
            ignored.append(clean)
            continue
        if target in used.values():
            raise ValueError(f"two columns give {target!r}: map one of them elsewhere")
        used[name] = target
    return used, ignored


def _csv_chunks(text: io.TextIOBase, mapping: dict[str, str], summary: ImportSummary):
    csv.field_size_limit(1 << 28)  # an over-long field is a rejected row, not a crash
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the file is empty") from None
    used, summary.ignored_columns = column_map(header, mapping)
    positions = {target: header.index(src) for src, target in used.items()}
    width = len(header)
    lines: list[int] = []
    rows: list[list[str]] = []
    bad: dict[int, str] = {}
    last = reader.line_num
    for record in reader:
        line, last = last + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != width:
            bad[line] = f"{len(record)} fields where the header has {width}"
            continue
        lines.append(line)
        rows.append(record)
        if len(rows) >= CHUNK_ROWS:
            yield _frame_from_text(rows, lines, positions), bad
            lines, rows, bad = [], [], {}
    if rows or bad:
        yield _frame_from_text(rows, lines, positions), bad


def _jsonl_chunks(text: io.TextIOBase, mapping: dict[str, str], summary: ImportSummary):
    lines: list[int] = []
    records: list[dict] = []
    bad: dict[int, str] = {}
    ignored: set[str] = set()
    for number, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:  # NaN/Infinity (Python's json writes them): the row names the bad value
                obj = json.loads(raw)
            except ValueError:
                bad[number] = f"not JSON: {exc}"
                continue
        if not isinstance(obj, dict):
            bad[number] = "not a JSON object"
            continue
        row = {}
        for key, value in obj.items():
            target = mapping.get(key) or (key if key in FRAME_COLUMNS else HEADER_ALIASES.get(key))
            if target is None:
                ignored.add(key)
            else:
                row[target] = value
        lines.append(number)
        records.append(row)
        if len(records) >= CHUNK_ROWS:
            yield _frame_from_records(records, lines), bad
            lines, records, bad = [], [], {}
    summary.ignored_columns = sorted(ignored)
    if records or bad:
        yield _frame_from_records(records, lines), bad


def _frame_from_text(rows: list[list[str]], lines: list[int], positions: dict) -> pd.DataFrame:
    cols = list(zip(*rows, strict=True)) if rows else []
    data = {
        name: pd.Series(
            cols[positions[name]] if name in positions and cols else [""] * len(rows), dtype=object
        )
        for name in FRAME_COLUMNS
    }
    frame = pd.DataFrame(data)
    frame.insert(0, "index", np.asarray(lines, dtype=np.int64))
    return frame


def _frame_from_records(records: list[dict], lines: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {name: pd.Series([r.get(name) for r in records], dtype=object) for name in FRAME_COLUMNS}
    )
    frame.insert(0, "index", np.asarray(lines, dtype=np.int64))
    return frame


def _blank(s: pd.Series) -> np.ndarray:
    return s.map(lambda v: v is None or (isinstance(v, str) and not v.strip())).to_numpy(bool)


def parse_times(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Text or ISO date-times as UTC (a time without zone is local, Asia/Shanghai) and the
    mask of non-blank values that are not date-times. ``2024/03/05 14:22`` is understood."""
    text = values.map(lambda v: "" if v is None else str(v).strip()).astype(object)
    blank = (text == "").to_numpy()
    text = text.str.replace("/", "-", regex=False)
    zoned = text.str.contains(_ZONE_SUFFIX).to_numpy(bool) & ~blank
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if zoned.any():
        part = pd.to_datetime(text[zoned], errors="coerce", utc=True, format="ISO8601")
        out[zoned] = part.astype("datetime64[us, UTC]")
    naive = ~zoned & ~blank
    if naive.any():
        part = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        retry = part.isna()
        if retry.any():
            part[retry] = pd.to_datetime(text[naive][retry], errors="coerce", format="mixed")
        local = part.dt.tz_localize(local_zone(), ambiguous="NaT", nonexistent="shift_forward")
        out[naive] = local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    bad = out.isna().to_numpy() & ~blank
    return out, bad


def _as_text(v) -> str | None:
    """A cell as text: None for a blank, a number as its digits, anything else its repr."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, str):
        return v
    return str(v) if isinstance(v, int | float) else repr(v)


def type_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """Text (or JSON) values as the pipeline's types; rows whose values cannot be read get
    their reason (keyed by line number) and leave the frame."""
    bad = np.full(len(frame), None, dtype=object)

    def fail(mask: np.ndarray, why: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask & pd.isna(bad)):
            bad[i] = why(i)

    out = frame.copy()
    for name in ("reported_at", "deadline"):
        times, unreadable = parse_times(frame[name])
        raw = frame[name].to_numpy(dtype=object)
        fail(unreadable, lambda i, n=name, r=raw: f"{n} {r[i]!r} is not a date-time")
        out[name] = times
    for name in ("lon", "lat"):
        raw = frame[name].to_numpy(dtype=object)
        blank = _blank(frame[name])
        numbers = pd.to_numeric(
            frame[name].map(
                lambda v: None if v is None or v == "" else np.nan if isinstance(v, bool) else v
            ),
            errors="coerce",
        ).to_numpy(np.float64)
        fail(
            ~blank & ~np.isfinite(numbers),
            lambda i, n=name, r=raw: f"{n} {r[i]!r} is not a finite number",
        )
        out[name] = np.where(blank, np.nan, numbers)
    for name in ("source", "external_id", "category", "channel", "crs", "unit_code", "description"):
        out[name] = pd.Series(
            [v if type(v) is str and v.strip() else _as_text(v) for v in frame[name].tolist()],
            index=frame.index,
            dtype=object,
        )
    keep = pd.isna(bad)
    reasons = {int(frame["index"].iat[i]): bad[i] for i in np.flatnonzero(~keep)}
    return out[keep].reset_index(drop=True), reasons


def import_cases(
    session: Session,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str | None = None,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
    user_name: str = "import-cases",
    writers: int | None = None,
) -> ImportSummary:
    """Import a CSV or JSON-lines file of cases, one transaction per chunk (good rows land,
    bad rows are listed in the summary's errors with their line numbers).

    On PostgreSQL ``writers`` chunks (default ``WRITERS``) are stored at once, each by its
    own connection and transaction, while this thread reads and types the next: the
    database's work per case (six indexes of ``case``, three rollup merges) is CPU-bound,
    one core per connection. Chunks touch disjoint cases and merge rollup rows in key
    order, so concurrent chunks wait for each other at most on a shared rollup row, never
    deadlock. SQLite has one writer."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    fmt = fmt or guess_format(path)
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}: use csv or jsonl")
    encoding = encoding or detect_encoding(path)
    postgres = session.get_bind().dialect.name == "postgresql"
    writers = max(1, writers or WRITERS) if postgres else 1
    summary = ImportSummary()
    with path.open(encoding=encoding, newline="" if fmt == "csv" else None) as stream:
        chunks: Iterator = (_csv_chunks if fmt == "csv" else _jsonl_chunks)(
            stream, mapping or {}, summary
        )
        typed = (
            _typed_chunk(raw, unreadable_rows, source)
            for raw, unreadable_rows in _decoded(chunks, encoding)
        )
        stored = (
            _stored_in_parallel(session, typed, writers, user_name)
            if writers > 1
            else _stored_serially(session, typed, user_name)
        )
        failure: BaseException | None = None
        for raw, report in stored:  # to the end, also after a failure: what was stored
            if isinstance(report, BaseException):
                failure = failure or report
                continue
            ids = dict(zip(raw["index"].tolist(), raw["external_id"].tolist(), strict=True))
            for o in report.items:
                if o.status == "rejected":
                    summary.errors.append((o.index, str(ids.get(o.index) or ""), o.reason or ""))
            for status in ("created", "updated", "unchanged", "rejected"):
                setattr(summary, status, getattr(summary, status) + report.count(status))
            summary.rows += report.rows
            if progress:
                progress(report.rows)
    summary.errors.sort()
    if failure is not None:
        if isinstance(failure, ValueError | LookupError) and summary.rows == 0:
            raise failure  # the file or the options, before anything was stored: fix and rerun
        raise ImportStopped(summary, _why(failure)) from failure
    return summary


def _typed_chunk(raw: pd.DataFrame, unreadable_rows: dict, source: str | None):
    """A read chunk as the pipeline's types: (raw, typed frame, unreadable rows)."""
    frame, unreadable = type_frame(raw)
    unreadable.update(unreadable_rows)
    if source:
        frame["source"] = frame["source"].map(lambda v: v or source)
    if frame["source"].isna().all() and len(frame) and not source:
        raise ValueError("the file has no source column: name the sender with --source")
    return raw, frame, unreadable


def _stored_serially(session: Session, typed: Iterator, user_name: str) -> Iterator[tuple]:
    """Each typed chunk stored in turn, in this session: (raw, report), or (None, the
    exception) once, last, when reading or storing a chunk failed."""
    try:
        for raw, frame, unreadable in typed:
            yield raw, _ingest_chunk(session, frame, unreadable, user_name)
    except (Exception, KeyboardInterrupt) as exc:  # told in the summary, after what was stored
        with contextlib.suppress(Exception):  # the connection may be gone
            session.rollback()
        yield None, exc


def _stored_in_parallel(
    session: Session, typed: Iterator, writers: int, user_name: str
) -> Iterator[tuple]:
    """Each typed chunk stored by one of ``writers`` threads (a session each), at most
    ``writers`` chunks in flight while the next is read; (raw, report) in file order.

    When reading or storing a chunk fails, no chunk is started after it; the chunks in
    flight end (stored or not), their reports come out, and then (None, the first
    exception). A chunk that shares a (source, external_id) with a chunk in flight waits
    until those are stored, so a case repeated further down a file ends as its last line
    says, as in a serial import. The point locator is built once, before the first chunk
    is stored, not by each writer."""
    engine = session.get_bind()

    def warm() -> None:
        from api.services.locate import point_locator

        with Session(bind=engine) as s:
            point_locator(s)

    def store(frame: pd.DataFrame, unreadable: dict) -> IngestReport:
        with Session(bind=engine, expire_on_commit=False) as s:
            return _ingest_chunk(s, frame, unreadable, user_name)

    pending: deque = deque()  # (raw, future, keys) in file order
    failure: BaseException | None = None

    def finished() -> Iterator[tuple]:
        nonlocal failure
        raw_done, done, _ = pending.popleft()
        try:
            report = done.result()
        except Exception as exc:
            failure = failure or exc
            return
        yield raw_done, report

    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="import-writer") as pool:
        try:
            warming = pool.submit(warm)  # while the first chunk is read
            for raw, frame, unreadable in typed:
                if warming is not None:
                    warming.result()
                    warming = None
                keys = _keys(frame)
                while pending and (
                    len(pending) >= writers or any(keys & other for *_, other in pending)
                ):
                    yield from finished()
                if failure is not None:
                    break
                pending.append((raw, pool.submit(store, frame, unreadable), keys))
        except (Exception, KeyboardInterrupt) as exc:  # reading the file failed, or Ctrl-C
            failure = failure or exc
        while pending:  # the chunks in flight end, stored or not, before anything is told
            yield from finished()
    if failure is not None:
        yield None, failure


def _keys(frame: pd.DataFrame) -> set[tuple]:
    """The (source, external_id) of a typed chunk's rows, stripped as validation does."""

    def clean(values: pd.Series) -> list:
        return [v.strip() if isinstance(v, str) else v for v in values.tolist()]

    return set(zip(clean(frame["source"]), clean(frame["external_id"]), strict=True))


def _decoded(chunks: Iterator, encoding: str) -> Iterator:
    """``chunks``, with a decoding error told as something to act on (the chunks before
    it have landed; re-running with the right encoding finishes the file)."""
    try:
        yield from chunks
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"the file is not {encoding} text ({exc.reason} at byte {exc.start} of a block): "
            "name its encoding with --encoding (utf-8, gb18030)"
        ) from None


def count_rows(path: Path, fmt: str | None = None) -> int:
    """About how many rows a file holds (its lines, less a CSV header): for a progress bar."""
    lines, last = 0, b"\n"
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    fmt = fmt or guess_format(path)
    return max(0, lines - (fmt == "csv"))


def _ingest_chunk(
    session: Session, frame: pd.DataFrame, unreadable: dict, user_name: str
) -> IngestReport:
    if session.get_bind().dialect.name == "postgresql":
        # the rollup merges sort up to a chunk's rows: in memory, not in temporary files
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    return ingest_frame(
        session,
        frame,
        user_name=user_name,
        scope_code=None,
        prior=unreadable,
        bulk=True,
        index_label="line",
    )


def write_errors(path: Path, errors: list[tuple[int, str, str]]) -> None:
    """The error file: UTF-8 CSV with BOM (opens in Excel), one bad row per line."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["line", "external_id", "reason"])
        out.writerows(errors)
