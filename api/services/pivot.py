"""The analysts' pivot: the engine's cells (``api.engine.pivot_cells``) laid out as rows
and columns, sorted, and written as JSON, CSV or XLSX.

A row is one combination of the row dimensions (a unit, a category, a period bin...), a
column one combination of the column dimensions; each cell carries the value (None: no
value, never drawn as zero), and ``low_count``. Suppressed or missing figures are empty
in CSV and XLSX, never 0.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session

from api import engine
from api.engine import MetricsError, PivotCells, PivotQuery
from api.principal import Principal
from api.services.audit import audit

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PivotLayout:
    """How the table is sorted: by the column of label ``sort`` (or ``total``, or a row
    dimension's name; None: the rows' natural order) in ``order``."""

    sort: str | None = None
    order: Order = "desc"


def _labels(cells: PivotCells, dim: str) -> list[tuple[str, str]]:
    """(key, label) of each position along ``dim``."""
    if dim == "unit":
        u = cells.state.units
        return [(u.codes[i], u.name[i]) for i in cells.units]
    if dim == "period":
        return [(p.start.isoformat(), _bin_label(p)) for p in cells.bins] or [("", "")]
    return [(k, zh) for k, zh, _ in cells.keys]


def _bin_label(p) -> str:
    if p.start == p.end:
        return p.start.isoformat()
    if p.start.day == 1 and (p.end.month != (p.end + _one_day()).month):
        return p.start.strftime("%Y-%m")
    return f"{p.start.isoformat()}/{p.end.isoformat()}"


def _one_day() -> dt.timedelta:
    return dt.timedelta(days=1)


AXIS = {"unit": 0, "period": 1}


def _axis(dim: str) -> int:
    return AXIS.get(dim, 2)


def _total(cells: PivotCells, keep: tuple[int, ...]) -> np.ndarray:
    """The metric over the axes not in ``keep`` (sums of numerator and denominator: a rate
    is never an average of rates); None-valued (NaN) for quantiles, which do not add."""
    m = cells.resolved.metric
    drop = tuple(a for a in range(3) if a not in keep)
    if m.kind == "percentile" or m.compute is not None:
        if not drop:
            return cells.value
        return np.full(tuple(cells.value.shape[a] for a in keep), np.nan)
    num = cells.numerator.sum(axis=drop) if drop else cells.numerator
    if cells.denominator is None:
        return num
    den = cells.denominator
    if m.kind == "per_capita":  # the population counts once per unit
        den = den.max(axis=tuple(a for a in drop if a != 0)) if drop else den
        if 0 in drop:
            den = den.sum(axis=0)
    else:
        den = den.sum(axis=drop) if drop else den
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1) * m.scale, np.nan)


def _py(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def pivot_table(
    session: Session, code: str, pivot: PivotQuery, layout: PivotLayout | None = None
) -> dict:
    """The pivot under ``code`` (a unit in the caller's scope) as JSON: ``columns`` (one
    per combination of the column dimensions: key and label per dimension), ``labels``
    (per dimension, its keys and labels), ``rows`` (per row dimension, each row's position
    in its labels), ``values`` (rows × columns), ``low_count`` likewise, ``row_totals``,
    ``totals`` per column and the grand ``total``. ``values`` (rows × columns, NaN: no value),
    ``low_count`` and the totals are numpy arrays: the API's orjson writes them at once."""
    layout = layout or PivotLayout()
    cells = engine.pivot_cells(session, code, pivot)
    labels = {d: _labels(cells, d) for d in pivot.dimensions}
    order = [*pivot.rows, *pivot.columns]
    axes = [_axis(d) for d in order]
    # cells as (row dims..., column dims...) arrays
    shape3 = cells.value.shape
    value, low = cells.value, cells.low_count
    missing = [a for a in range(3) if a not in axes]
    for a in sorted(missing, reverse=True):  # a dimension not asked for has one position
        value, low = value.take(0, axis=a), low.take(0, axis=a)
    kept = [a for a in range(3) if a not in missing]
    perm = [kept.index(a) for a in axes]
    value, low = value.transpose(perm), low.transpose(perm)
    nrow = len(pivot.rows)
    row_shape = value.shape[:nrow]
    col_shape = value.shape[nrow:]
    value = value.reshape(int(np.prod(row_shape)), int(np.prod(col_shape)))
    low = low.reshape(value.shape)
    del shape3
    col_keys = list(itertools.product(*(range(n) for n in col_shape)))
    row_total = _total(cells, tuple(sorted(_axis(d) for d in pivot.rows)))
    col_total = _total(cells, tuple(sorted(_axis(d) for d in pivot.columns)))
    row_total = _reorder(row_total, [_axis(d) for d in pivot.rows]).ravel()
    col_total = _reorder(col_total, [_axis(d) for d in pivot.columns]).ravel()
    columns = [
        {
            d: {"key": labels[d][i][0], "label": labels[d][i][1]}
            for d, i in zip(pivot.columns, k, strict=True)
        }
        | {"label": " · ".join(labels[d][i][1] for d, i in zip(pivot.columns, k, strict=True))}
        for k in col_keys
    ]
    heads = {d: [{"key": key, "label": label} for key, label in labels[d]] for d in labels}
    # each row's position along each row dimension (columnar: no dict per row)
    index = np.indices(row_shape).reshape(len(row_shape), -1) if row_shape else np.zeros((0, 1))
    row_index = {d: index[n] for n, d in enumerate(pivot.rows)}
    order = _order(heads, row_index, value, row_total, columns, pivot.rows, layout)
    if order is not None:
        row_index = {d: positions[order] for d, positions in row_index.items()}
        value, low, row_total = value[order], low[order], row_total[order]
    m = cells.resolved
    return {
        **m.describe(),
        "unit": code,
        "level": cells.level,
        "interval": pivot.interval,
        "rows_by": list(pivot.rows),
        "columns_by": list(pivot.columns),
        "columns": columns,
        "labels": heads,  # per dimension: its keys and labels, in order
        "rows": {d: np.ascontiguousarray(p) for d, p in row_index.items()},  # positions
        "values": np.ascontiguousarray(np.round(value, 6)),  # NaN: null in JSON
        "low_count": np.ascontiguousarray(low),
        "row_totals": np.ascontiguousarray(np.round(row_total, 6)),
        "totals": np.ascontiguousarray(np.round(col_total, 6)),
        "total": _py(float(_total(cells, ()).ravel()[0])) if value.size else None,
    }


def _python(arr: np.ndarray) -> list:
    """Floats rounded to 6 decimals as Python values, None for NaN (vectorised)."""
    arr = np.asarray(arr, dtype=float)
    out = np.round(arr, 6).astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()


def _reorder(arr: np.ndarray, axes: list[int]) -> np.ndarray:
    """``arr`` (its axes in ascending order of ``axes``) with its axes in ``axes``' order."""
    ranked = sorted(axes)
    return arr.transpose([ranked.index(a) for a in axes]) if arr.ndim > 1 else arr


def _order(
    heads: dict[str, list[dict]],
    row_index: dict[str, np.ndarray],
    value: np.ndarray,
    row_total: np.ndarray,
    columns: list[dict],
    row_dims: tuple[str, ...],
    layout: PivotLayout,
) -> np.ndarray | None:
    """The rows' order for ``layout`` (None: as they are); rows with no value go last."""
    if layout.sort is None:
        return None
    desc = layout.order == "desc"
    if layout.sort in row_dims:
        names = [h["label"] for h in heads[layout.sort]]
        rank = np.argsort(np.argsort(names, kind="stable"), kind="stable")
        by, have = rank[row_index[layout.sort]].astype(float), None
    elif layout.sort == "total":
        by = row_total
    else:
        labels = [c["label"] for c in columns]
        if layout.sort not in labels:
            raise MetricsError(
                f"cannot sort by {layout.sort!r}: use total, a row dimension or a column label"
            )
        by = value[:, labels.index(layout.sort)]
    have = np.isfinite(by)
    key = np.where(have, -by if desc else by, 0.0)
    return np.lexsort((key, ~have))  # stable: ties keep the rows' own order


def _flat(table: dict) -> tuple[list[str], list[list]]:
    """Header and rows for a file: the row dimensions' labels, then one column per pivot
    column, then the total. Low counts of rates are written as they are, flagged in the
    JSON only; a missing value is an empty cell."""
    head = [*table["rows_by"], *(c["label"] for c in table["columns"]), "total"]
    values, totals = _python(table["values"]), _python(table["row_totals"])
    body = []
    heads, index = table["labels"], table["rows"]
    for r in range(len(values)):
        keys = []
        for d in table["rows_by"]:
            named = heads[d][int(index[d][r])]
            keys.append(f"{named['label']} ({named['key']})" if d == "unit" else named["label"])
        body.append([*keys, *values[r], totals[r]])
    blank = [""] * (len(table["rows_by"]) - 1)
    body.append(["total", *blank, *_python(table["totals"]), table["total"]])
    return head, body


def pivot_rows(table: dict) -> tuple[list[str], list[list]]:
    """The pivot as a header and rows (the row dimensions' labels, one value per column,
    the row's total; the last row the column totals), as the files write it; a missing
    value is None, never 0."""
    return _flat(table)


def pivot_csv(table: dict) -> bytes:
    """The pivot as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese)."""
    head, body = _flat(table)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(head)
    for row in body:
        w.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode()


def pivot_xlsx(table: dict) -> bytes:
    """The pivot as an XLSX workbook (openpyxl): one sheet, the header bold and frozen."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    head, body = _flat(table)
    wb = Workbook()
    ws = wb.active
    ws.title = "pivot"
    ws.append(head)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in body:
        ws.append(row)
    ws.freeze_panes = ws.cell(row=2, column=len(table["rows_by"]) + 1)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


FORMATS = {
    "csv": ("text/csv; charset=utf-8", pivot_csv),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", pivot_xlsx),
}


def export_pivot(session: Session, user: Principal, table: dict, format: str) -> tuple[bytes, str]:
    """The pivot as a file, audited like every export: (body, media type)."""
    media, write = FORMATS[format]
    audit(
        session,
        user.name,
        user.unit_code,
        "export.pivot",
        target=table["unit"],
        detail={"metric": table["metric"]["id"], "format": format, "rows": len(table["rows"])},
    )
    return write(table), media
