"""Bulk event files (``zhili import-events``): CSV (UTF-8, with BOM, or GB18030) or JSON
lines, read in chunks of 10,000 rows, each chunk one transaction through the one event
intake (``api.services.events.ingest_events``): good rows land, each bad row is reported
with its line number and reason, re-running a file changes nothing. The file handling
(encoding detection, format guess, error file, row count) is the case import's
(``api.services.case_import``).

Columns are the API's field names; common Chinese headers of 110 exports are understood
(接警时间, 出警时间, 到场时间, 警情类别, ...); ``mapping`` renames any other. Columns that
map to no field are ignored and never read.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from sqlalchemy.orm import Session

from api.services.case_import import ImportSummary, _decoded, detect_encoding, guess_format
from api.services.events import FIELDS, ingest_events

CHUNK_ROWS = 10_000
HEADER_ALIASES = {
    "来源": "source",
    "警情编号": "external_id",
    "事件编号": "external_id",
    "编号": "external_id",
    "警情类别": "type",
    "警情类型": "type",
    "细类": "category",
    "等级": "priority",
    "接警时间": "received_at",
    "出警时间": "set_off_at",
    "到场时间": "on_scene_at",
    "支援到达时间": "support_at",
    "合围时间": "cordon_at",
    "结束时间": "closed_at",
    "处警力量": "force_kind",
    "巡组编号": "patrol_unit_code",
    "处置结果": "outcome",
    "经度": "lon",
    "纬度": "lat",
    "坐标系": "crs",
    "网格编码": "unit_code",
}


def _target(name: str, mapping: dict[str, str]) -> str | None:
    clean = name.strip().lstrip("\ufeff")
    target = mapping.get(clean) or (clean if clean in FIELDS else HEADER_ALIASES.get(clean))
    return target


def _rows(stream, fmt: str, mapping: dict[str, str], summary: ImportSummary) -> Iterator:
    """(line number, row dict or the reason it cannot be read) of each non-blank row."""
    ignored: set[str] = set()
    targets: dict[str, str | None] = {}
    if fmt == "csv":
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ValueError("the file is empty")
        targets = [_target(h, mapping) for h in header]
        ignored = {h.strip() for h, t in zip(header, targets, strict=True) if t is None}
        last = reader.line_num
        for record in reader:
            line, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                yield line, f"{len(record)} fields where the header has {len(header)}"
                continue
            yield line, {t: v for t, v in zip(targets, record, strict=True) if t}
    else:
        for line, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield line, f"not JSON: {exc}"
                continue
            if not isinstance(obj, dict):
                yield line, "not a JSON object"
                continue
            row = {}
            for key, value in obj.items():
                if key not in targets:
                    targets[key] = _target(key, mapping)
                target = targets[key]
                if target is None:
                    ignored.add(key)
                else:
                    row[target] = value
            yield line, row
    summary.ignored_columns = sorted(ignored)


def import_events(
    session: Session,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str | None = None,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
    user_name: str = "import-events",
) -> ImportSummary:
    """Import a CSV or JSON-lines file of events, one transaction per chunk."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    fmt = fmt or guess_format(path)
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}: use csv or jsonl")
    unknown = sorted(set((mapping or {}).values()) - set(FIELDS))
    if unknown:
        raise ValueError(f"--map to unknown field(s) {', '.join(unknown)}: use {', '.join(FIELDS)}")
    encoding = encoding or detect_encoding(path)
    summary = ImportSummary()

    def store(lines: list[int], rows: list[dict], bad: dict[int, str]) -> None:
        report = ingest_events(
            session,
            rows,
            indexes=lines,
            prior=bad,
            user_name=user_name,
            scope_code=None,
            all_or_nothing=False,
            index_label="line",
        )
        ids = dict(zip(lines, [r.get("external_id") for r in rows], strict=True))
        for o in report.items:
            if o.status == "rejected":
                summary.errors.append((o.index, str(ids.get(o.index) or ""), o.reason or ""))
        for status in ("created", "updated", "unchanged", "rejected"):
            setattr(summary, status, getattr(summary, status) + report.count(status))
        summary.rows += len(report.items)
        if progress:
            progress(len(report.items))

    with path.open(encoding=encoding, newline="" if fmt == "csv" else None) as stream:
        lines: list[int] = []
        rows: list[dict] = []
        bad: dict[int, str] = {}
        for line, row in _decoded(_rows(stream, fmt, mapping or {}, summary), encoding):
            if isinstance(row, str):
                bad[line] = row
                continue
            if source and not row.get("source"):
                row["source"] = source
            lines.append(line)
            rows.append(row)
            if len(rows) >= CHUNK_ROWS:
                store(lines, rows, bad)
                lines, rows, bad = [], [], {}
        if rows or bad:
            store(lines, rows, bad)
    summary.errors.sort()
    return summary
