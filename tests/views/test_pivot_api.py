"""GET /api/v1/pivot: the layout, sorting, CSV and XLSX, scope and bad input."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook


def test_village_month_category_pivot(views_app, town) -> None:
    with town.client(views_app, "analyst@city") as c:
        params = {"level": "village", "rows": "unit,period", "columns": "category",
                  "period": "2026-Q1", "interval": "month", "sort": "total"}  # fmt: skip
        r = c.get("/api/v1/pivot", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["level"] == "village" and body["rows_by"] == ["unit", "period"]
        n = len(body["labels"]["unit"]) * 3
        assert len(body["values"]) == len(body["rows"]["unit"]) == n
        totals = body["row_totals"]
        assert totals == sorted(totals, reverse=True)  # sorted by total, descending
        # a row's total is the sum of its categories (a count)
        assert abs(sum(v or 0 for v in body["values"][0]) - totals[0]) < 1e-6
        assert abs(sum(body["totals"]) - body["total"]) < 1e-6

        csv_r = c.get("/api/v1/pivot", params=params | {"format": "csv"})
        assert csv_r.status_code == 200 and "attachment" in csv_r.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
        assert rows[0][:2] == ["unit", "period"] and rows[0][-1] == "total"
        assert len(rows) == n + 2  # header, rows, the totals

        x = c.get("/api/v1/pivot", params=params | {"format": "xlsx"})
        sheet = load_workbook(io.BytesIO(x.content)).active
        assert sheet.max_row == n + 2
        assert [cell.value for cell in sheet[1]][:2] == ["unit", "period"]


def test_rates_and_bad_input(views_app, town) -> None:
    with town.client(views_app, "official@east") as c:
        r = c.get("/api/v1/pivot", params={"metric": "resolution_rate", "columns": "category"})
        assert r.status_code == 200, r.text
        assert all(0 <= v <= 1 for row in r.json()["values"] for v in row if v is not None)
        for params, words in (
            ({"metric": "open_backlog", "columns": "category"}, "cannot be split"),
            ({"rows": "unit", "columns": "unit"}, "once"),
            ({"sort": "nope"}, "cannot sort"),
            ({"level": "city"}, "not below"),
        ):
            bad = c.get("/api/v1/pivot", params=params)
            assert bad.status_code == 400 and words in bad.json()["message"], bad.text


def test_pivot_scope(views_app, town) -> None:
    with town.client(views_app, "official@east") as c:
        r = c.get("/api/v1/pivot", params={"level": "village"})
        assert r.status_code == 200
        codes = [u["key"] for u in r.json()["labels"]["unit"]]
        assert codes and all(code.startswith(town.east) for code in codes)
        assert c.get("/api/v1/pivot", params={"unit": town.west}).status_code == 404
