"""Monthly special-population counts from the departments (``zhili import-populations``).

One file is one month of one department: CSV (UTF-8, with BOM, or GB18030), Excel ``.xlsx``
(read by openpyxl) or JSON lines. One row per unit (a village or a grid) and group:

    unit_code, group, registered, under_management, visited, lost_contact,
    newly_registered, left

(Chinese headers such as 单位编码, 类别, 登记, 在管, 走访帮扶, 失联, 新增, 减少 are understood;
a count left blank is 0.) Groups are rows of table ``population_group``; the floating
population, rental housing units and help stations are groups of their own kinds, counted
in ``registered``.

The file is checked whole before anything is written; any offending row (an unknown unit
or group, a count that is not a whole number or is negative, more visited or lost than under
management, a unit and group twice) refuses the import with every such row listed. A
second import of the same month and department replaces the first in one transaction; the
first stays as history (its batch ``replaced_by`` the new one, its rows no longer current).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.db.populations import PopulationBatch, PopulationCount, PopulationGroup
from api.db.versions import bump_version
from api.services.local_time import local_zone

DATASET = "special_populations"  # the domain's dataset version
COUNTS = (
    "registered",
    "under_management",
    "visited",
    "lost_contact",
    "newly_registered",
    "left",
)
HEADER_ALIASES = {
    "单位编码": "unit_code",
    "网格编码": "unit_code",
    "村社区编码": "unit_code",
    "code": "unit_code",
    "类别": "group",
    "人群类别": "group",
    "group_code": "group",
    "登记": "registered",
    "登记数": "registered",
    "在管": "under_management",
    "在管数": "under_management",
    "走访": "visited",
    "走访帮扶": "visited",
    "失联": "lost_contact",
    "新增": "newly_registered",
    "减少": "left",
}
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PopulationImportError(ValueError):
    """An import refused whole: ``problems`` lists each offending row (line, unit, reason)."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One offending row: its line in the file (the header is line 1), unit and reason."""

    line: int
    unit_code: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.unit_code or '-'}: {self.reason}"


@dataclass
class ImportReport:
    """What an import stored: its batch, month, department, rows, units, totals per group
    and the batch it replaced (if any)."""

    batch_id: int
    month: dt.date
    department: str
    rows: int
    units: int
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    replaced: int | None = None

    def lines(self) -> list[str]:
        """The validation report, a line each."""
        out = [
            f"batch {self.batch_id}: {self.month:%Y-%m} {self.department}: "
            f"{self.rows} rows, {self.units} units, every row valid",
        ]
        for group, sums in self.totals.items():
            out.append(f"  {group:<24} " + " ".join(f"{k}={v}" for k, v in sums.items()))
        if self.replaced is not None:
            out.append(f"replaced batch {self.replaced} (kept as history)")
        return out


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` → the month's first day; ValueError with the expected form."""
    m = MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"--month {text!r}: write the month as YYYY-MM, e.g. 2026-11")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def read_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    """(line, row) pairs from a CSV, XLSX or JSON-lines file, headers mapped to fields."""
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(path)
    return _csv_rows(path)


def _field(name: object) -> str:
    key = str(name or "").strip()
    return HEADER_ALIASES.get(key, key.lower())


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor GB18030 text")


def _csv_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(_decode(path.read_bytes())))
    header = next(reader, None)
    if not header:
        raise ValueError(f"{path.name}: empty file (a header row is expected)")
    names = [_field(h) for h in header]
    return [
        (reader.line_num, dict(zip(names, row, strict=False)))
        for row in reader
        if any(c.strip() for c in row)
    ]


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    out = []
    for n, line in enumerate(_decode(path.read_bytes()).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PopulationImportError(
                f"{path.name}: line {n} is not JSON", [Problem(n, "", f"not JSON: {exc.msg}")]
            ) from None
        if not isinstance(record, dict):
            raise PopulationImportError(
                f"{path.name}: line {n} is not an object", [Problem(n, "", "not an object")]
            )
        out.append((n, {_field(k): v for k, v in record.items()}))
    return out


def _xlsx_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a damaged or renamed file: say so, in one line
        raise ValueError(f"{path.name}: not a readable .xlsx workbook ({exc})") from None
    try:
        rows = book.active.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise ValueError(f"{path.name}: empty sheet (a header row is expected)")
        names = [_field(h) for h in header]
        return [
            (n, dict(zip(names, row, strict=False)))
            for n, row in enumerate(rows, start=2)
            if any(c not in (None, "") for c in row)
        ]
    finally:
        book.close()


def _count(value: object) -> int | None:
    """A whole, non-negative count (blank → 0); None when it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        n = int(value)
    else:
        text = str(value).strip()
        if not re.fullmatch(r"-?\d+(\.0+)?", text):
            return None
        n = int(float(text))
    return n


def import_populations(
    session: Session,
    path: Path,
    month: dt.date,
    department: str,
    imported_by: str | None = None,
) -> ImportReport:
    """Check and store one month of one department's counts (see the module docstring).
    Raises ``PopulationImportError`` listing every offending row; nothing is written then.
    The caller commits."""
    department = department.strip()
    if not 1 <= len(department) <= 64:
        raise ValueError("--department: a department name of 1 to 64 characters")
    raw = path.read_bytes() if path.is_file() else b""
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path.name}: no rows")
    groups = dict(session.execute(select(PopulationGroup.code, PopulationGroup.kind)).all())
    wanted = {str(r.get("unit_code") or "").strip() for _, r in rows}
    units = _units(session, wanted, month)
    problems: list[Problem] = []
    records = []
    seen: Counter = Counter()
    for line, row in rows:
        code = str(row.get("unit_code") or "").strip()
        group = str(row.get("group") or "").strip()
        why = []
        if not code:
            why.append("no unit_code")
        elif code not in units:
            why.append(
                f"unknown unit code {code!r} (no current grid, or village without grids, has it)"
            )
        if group not in groups:
            why.append(f"unknown group {group!r}; known: {', '.join(sorted(groups))}")
        counts = {}
        for name in COUNTS:
            n = _count(row.get(name))
            if n is None:
                why.append(f"{name} {row.get(name)!r} is not a whole number")
            elif n < 0:
                why.append(f"{name} is negative ({n})")
            else:
                counts[name] = n
        if len(counts) == len(COUNTS):
            if counts["visited"] > counts["under_management"]:
                why.append(
                    f"visited ({counts['visited']}) above under management "
                    f"({counts['under_management']})"
                )
            if counts["lost_contact"] > counts["under_management"]:
                why.append(
                    f"lost contact ({counts['lost_contact']}) above under management "
                    f"({counts['under_management']})"
                )
        seen[(code, group)] += 1
        if code and group and seen[(code, group)] == 2:
            why.append(f"unit {code} and group {group} appear twice")
        problems.extend(Problem(line, code, w) for w in why)
        if not why:
            records.append((code, group, counts))
    if problems:
        raise PopulationImportError(
            f"{path.name}: {len({p.line for p in problems})} offending rows; nothing stored",
            problems,
        )
    return store_counts(
        session,
        month,
        department,
        records,
        source_name=path.name,
        sha256=hashlib.sha256(raw).hexdigest(),
        imported_by=imported_by,
        units=units,
        groups=groups,
    )


def _units(session: Session, codes: set[str], month: dt.date) -> dict[str, int]:
    """code → id of the current version of each of ``codes`` that is a leaf (a grid, or a
    village without grids): counts sit on leaves, so a parent is the sum of its children."""
    found: dict[str, int] = {}
    listed = sorted(c for c in codes if c)
    child = AdminUnit.__table__.alias("child")
    has_child = (
        select(child.c.id)
        .where(child.c.parent_code == AdminUnit.code, child.c.valid_to.is_(None))
        .exists()
    )
    for i in range(0, len(listed), 900):
        part = listed[i : i + 900]
        q = select(AdminUnit.code, AdminUnit.id).where(
            AdminUnit.code.in_(part), AdminUnit.valid_to.is_(None), ~has_child
        )
        found.update(dict(session.execute(q).all()))
    return found


def store_counts(
    session: Session,
    month: dt.date,
    department: str,
    records: list[tuple[str, str, dict[str, int]]],
    source_name: str | None = None,
    sha256: str | None = None,
    imported_by: str | None = None,
    units: dict[str, int] | None = None,
    groups: dict[str, str] | None = None,
) -> ImportReport:
    """Store checked ``records`` (unit code, group, counts) as the month of ``department``,
    replacing its current batch (kept as history); bumps the domain's dataset version.
    ``import_populations`` checks a file first; the seed calls this with its own rows."""
    if groups is None:
        groups = dict(session.execute(select(PopulationGroup.code, PopulationGroup.kind)).all())
    if units is None:
        units = _units(session, {c for c, _, _ in records}, month)
    now = dt.datetime.now(dt.UTC)
    old = session.scalar(
        select(PopulationBatch).where(
            PopulationBatch.month == month,
            PopulationBatch.department == department,
            PopulationBatch.replaced_by.is_(None),
        )
    )
    batch = PopulationBatch(
        month=month,
        department=department,
        source_name=source_name[:255] if source_name else None,
        sha256=sha256,
        rows=len(records),
        imported_at=now,
        imported_by=imported_by,
    )
    session.add(batch)
    session.flush()
    if old is not None:
        old.replaced_by, old.replaced_at = batch.id, now
        session.execute(
            update(PopulationCount)
            .where(PopulationCount.batch_id == old.id)
            .values(is_current=False)
        )
    counted_at = dt.datetime.combine(month, dt.time(12), local_zone())
    session.execute(
        PopulationCount.__table__.insert(),
        [
            {
                "batch_id": batch.id,
                "is_current": True,
                "month": month,
                "counted_at": counted_at,
                "department": department,
                "leaf_unit_id": units[code],
                "unit_code": code,
                "group_code": group,
                "kind": groups[group],
                **dict.fromkeys(COUNTS, 0),
                **counts,
            }
            for code, group, counts in records
        ],
    )
    bump_version(session, DATASET)
    totals: dict[str, dict[str, int]] = {}
    for _, group, counts in records:
        sums = totals.setdefault(group, dict.fromkeys(COUNTS, 0))
        for k, v in counts.items():
            sums[k] += v
    return ImportReport(
        batch.id,
        month,
        department,
        len(records),
        len({c for c, _, _ in records}),
        totals,
        old.id if old is not None else None,
    )


def batch_history(session: Session, month: dt.date | None = None) -> list[PopulationBatch]:
    """Every import (current and replaced), newest first, of ``month`` or of all months."""
    q = select(PopulationBatch).order_by(PopulationBatch.id.desc())
    if month is not None:
        q = q.where(PopulationBatch.month == month)
    return list(session.scalars(q))


def current_rows(session: Session) -> int:
    """How many current count rows are stored."""
    return int(
        session.scalar(select(func.count()).where(PopulationCount.is_current.is_(True))) or 0
    )
