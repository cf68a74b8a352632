"""The monthly report (月报) of a unit: its KPIs with 同比 and 环比, maps of its children,
the rankings, the alerts and what changed most, as HTML printed to PDF (and a PNG per
page) by the Chromium the product already relies on (offline: the page names no other
host; Chinese set in Noto Sans CJK, embedded by Chromium in the PDF).

Everything in it is read within the caller's scope: the unit is checked by the caller
(``check_scope``), and every figure is of that unit or below it.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import engine
from api.db.models import AdminLevel, Alert
from api.engine import MapQuery, MetricQuery, MetricsError
from api.errors import ApiError
from api.services.display import display_layer
from api.services.scope import subtree_codes

CHROMIUM = "/usr/bin/chromium"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KPIS = ("caseload", "resolution_rate", "mediation_success_rate", "on_time_rate",
        "open_backlog", "satisfaction", "median_days_to_close")  # fmt: skip
MAPS = ("caseload", "resolution_rate")
PALETTE = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")
FONT = "'Noto Sans CJK SC', 'Noto Sans SC', 'Noto Serif CJK SC', sans-serif"


@dataclass(frozen=True)
class Report:
    """A rendered report: the PDF, and one PNG per page."""

    pdf: bytes
    pages: list[bytes]
    html: str


def _fmt(value: float | None, fmt: str) -> str:
    if value is None:
        return "—"
    if fmt == "percent":
        return f"{value * 100:.1f}%"
    if fmt == "integer":
        return f"{value:,.0f}"
    return f"{value:,.2f}" if fmt == "decimal2" else f"{value:,.1f}"


def _change(now: float | None, before: float | None, fmt: str) -> str:
    if now is None or before is None:
        return "—"
    if fmt == "percent":
        return f"{(now - before) * 100:+.1f} 个百分点"
    if before == 0:
        return "—"
    return f"{(now - before) / abs(before) * 100:+.1f}%"


def check_month(month: str, span: tuple[dt.date, dt.date] | None = None) -> str:
    """``YYYY-MM`` or a 400 that says so; with ``span`` (the first and last day with
    reported cases) also a 400 for a month outside it, naming the months there are."""
    if not MONTH.match(month or ""):
        raise ApiError(400, f"bad month {month!r}: give YYYY-MM, e.g. 2026-10")
    if span is not None:
        first = dt.date.fromisoformat(month + "-01")
        if not span[0].replace(day=1) <= first <= span[1]:
            raise ApiError(
                400,
                f"month {month} is outside the data: give a month from "
                f"{span[0]:%Y-%m} to {span[1]:%Y-%m} (the months with reported cases)",
            )
    return month


def gather(session: Session, unit: str, month: str) -> dict:
    """The report's figures for ``unit`` (in the caller's scope) in ``month``."""
    check_month(month)
    kpis = []
    yoy = engine.unit_values(session, unit, list(KPIS), MetricQuery(period=month, compare="yoy"))
    prev = engine.unit_values(session, unit, list(KPIS), MetricQuery(period=month, compare="prev"))
    info = {m["id"]: m for m in engine.list_metrics()}
    for m in KPIS:
        f = info[m]["format"]
        now = yoy[m]["value"]
        kpis.append(
            {
                "label": info[m]["label_zh"],
                "value": _fmt(now, f),
                "yoy": _change(now, yoy[m].get("previous"), f),
                "prev": _change(now, prev[m].get("previous"), f),
                "low": bool(yoy[m].get("low_count")),
            }
        )
    detail = engine.children_metrics(session, unit, MetricQuery(period=month))
    summary = detail["self"]
    maps, rankings = [], []
    has_children = bool(detail["children"])
    for m in MAPS if has_children else ():
        table = engine.choropleth_table(
            session, MapQuery(parent=unit), MetricQuery(metric=m, period=month)
        )
        maps.append(_map_svg(session, table, info[m]))
        ranked = engine.ranking(session, unit, MetricQuery(metric=m, period=month, compare="prev"))
        rankings.append(
            {
                "label": info[m]["label_zh"],
                "rows": [
                    (
                        r["rank"],
                        r["name"],
                        _fmt(r["value"], info[m]["format"]),
                        "" if r["rank_change"] is None else f"{r['rank_change']:+d}",
                    )
                    for r in ranked["items"][:10]
                ],
            }
        )
    changed = []
    if has_children:
        moved = engine.children_metrics(session, unit, MetricQuery(period=month, compare="prev"))
        rows = [r for r in moved["children"] if r.get("change") is not None]
        rows.sort(key=lambda r: -abs(r["change"]))
        changed = [
            (
                r["name"],
                _fmt(r["previous"], "integer"),
                _fmt(r["value"], "integer"),
                f"{r['change']:+,.0f}",
            )
            for r in rows[:8]
        ]
    alerts = session.execute(
        select(
            Alert.unit_code,
            Alert.kind,
            Alert.category,
            Alert.observed,
            Alert.expected,
            Alert.opened_on,
            Alert.status,
        )
        .where(Alert.unit_code.in_(subtree_codes(unit)))
        .where(Alert.opened_on <= _month_end(month))
        .where(
            (Alert.closed_on.is_(None)) | (Alert.closed_on >= dt.date.fromisoformat(month + "-01"))
        )
        .order_by(Alert.opened_on.desc())
        .limit(15)
    ).all()
    level = session.scalar(select(AdminLevel.name_zh).where(AdminLevel.code == summary["level"]))
    return {
        "unit": summary | {"level_zh": level or summary["level"]},
        "month": month,
        "kpis": kpis,
        "maps": maps,
        "rankings": rankings,
        "changed": changed,
        "alerts": alerts,
    }


def _month_end(month: str) -> dt.date:
    y, m = int(month[:4]), int(month[5:])
    return dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)


def _map_svg(session: Session, table, metric: dict) -> dict:
    """The map of ``table`` (a choropleth table) as an inline SVG, and its legend."""
    layer = display_layer(session, table.level, table.parent)
    classes = dict(zip(table.column("code"), table.column("class"), strict=True))
    low = dict(zip(table.column("code"), table.column("low_count"), strict=True))
    shapes = {c: shape(orjson.loads(layer.fragments[c])) for c in layer.codes}
    if not shapes:
        return {"label": metric["label_zh"], "svg": "", "legend": []}
    xs = [b for g in shapes.values() for b in (g.bounds[0], g.bounds[2])]
    ys = [b for g in shapes.values() for b in (g.bounds[1], g.bounds[3])]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    width, height = 600, 600 * (y1 - y0) / max(x1 - x0, 1e-9)
    scale = 600 / max(x1 - x0, 1e-9)
    paths = []
    k = max(len(table.bounds), 1)
    for code, geom in shapes.items():
        cls = classes.get(code)
        fill = "#eeeeee" if low.get(code) else "#cccccc" if cls is None else _colour(cls, k)
        parts = geom.geoms if hasattr(geom, "geoms") else [geom]
        d = ""
        for poly in parts:
            for ring in [poly.exterior, *poly.interiors]:
                pts = " L".join(
                    f"{(x - x0) * scale:.1f},{(y1 - y) * scale:.1f}" for x, y in ring.coords
                )
                d += f"M{pts} Z "
        paths.append(f'<path d="{d}" fill="{fill}" stroke="#fff" stroke-width="0.6"/>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">{"".join(paths)}</svg>'
    )
    lower = None
    legend = []
    for i, bound in enumerate(table.bounds):
        legend.append(
            (
                _colour(i, k),
                f"{_fmt(lower, metric['format'])} – {_fmt(bound, metric['format'])}"
                if lower is not None
                else f"≤ {_fmt(bound, metric['format'])}",
            )
        )
        lower = bound
    return {"label": metric["label_zh"], "svg": svg, "legend": legend}


def _colour(cls: int, k: int) -> str:
    return PALETTE[min(round(cls * (len(PALETTE) - 1) / max(k - 1, 1)), len(PALETTE) - 1)]


def report_html(data: dict) -> str:
    """The report as one HTML document (A4 pages; no external resource)."""
    e = html.escape
    u = data["unit"]
    title = f"{e(u['name'])} 综治工作月报 · {data['month']}"
    kpi_rows = "".join(
        f"<tr><td>{e(k['label'])}</td><td class=n>{k['value']}{'*' if k['low'] else ''}</td>"
        f"<td class=n>{k['yoy']}</td><td class=n>{k['prev']}</td></tr>"
        for k in data["kpis"]
    )
    maps = "".join(
        f"<div class=map><h3>{e(m['label'])}</h3>{m['svg']}<div class=legend>"
        + "".join(f"<span><i style='background:{c}'></i>{e(t)}</span>" for c, t in m["legend"])
        + "</div></div>"
        for m in data["maps"]
    )
    rankings = "".join(
        f"<div class=rank><h3>{e(r['label'])} 排名</h3><table><tr><th>名次</th><th>单位</th>"
        "<th>数值</th><th>名次变化</th></tr>"
        + "".join(
            f"<tr><td>{a}</td><td>{e(b)}</td><td class=n>{c}</td><td class=n>{d}</td></tr>"
            for a, b, c, d in r["rows"]
        )
        + "</table></div>"
        for r in data["rankings"]
    )
    changed = (
        "".join(
            f"<tr><td>{e(n)}</td><td class=n>{a}</td><td class=n>{b}</td><td class=n>{c}</td></tr>"
            for n, a, b, c in data["changed"]
        )
        or "<tr><td colspan=4>—</td></tr>"
    )
    alerts = (
        "".join(
            f"<tr><td>{e(a.unit_code)}</td><td>{e(a.kind)}</td><td>{e(a.category or '')}</td>"
            f"<td class=n>{_fmt(a.observed, 'decimal1')}</td>"
            f"<td class=n>{_fmt(a.expected, 'decimal1')}</td>"
            f"<td>{a.opened_on.isoformat()}</td>"
            f"<td>{'未结' if a.status == 'open' else '已结'}</td></tr>"
            for a in data["alerts"]
        )
        or "<tr><td colspan=7>本月无预警</td></tr>"
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
@page {{ size: A4; margin: 14mm; }}
body {{ font-family: {FONT}; color: #1f1f1f; font-size: 11pt; margin: 0; }}
h1 {{ font-size: 20pt; margin: 0 0 4mm; }}
h2 {{ font-size: 14pt; margin: 6mm 0 2mm; border-bottom: 2px solid #b2182b; }}
h3 {{ font-size: 11pt; margin: 2mm 0; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: 1.2mm 2mm; }}
th {{ background: #f3f3f3; }}
.n {{ text-align: right; }}
.maps {{ display: flex; gap: 6mm; }}
.map {{ flex: 1; }}
.map svg {{ width: 100%; height: auto; }}
.legend span {{ display: inline-block; margin-right: 3mm; font-size: 9pt; }}
.legend i {{ display: inline-block; width: 3mm; height: 3mm; margin-right: 1mm; }}
.ranks {{ display: flex; gap: 6mm; }}
.rank {{ flex: 1; }}
.page {{ page-break-after: always; }}
.note {{ font-size: 9pt; color: #666; }}
</style></head><body>
<section class="page"><h1>{title}</h1>
<p class=note>{e(u["level_zh"])} · 代码 {e(u["code"])} · 统计期 {data["month"]} ·
同比：与上年同月比；环比：与上月比。* 样本过少，仅供参考。</p>
<h2>一、主要指标</h2>
<table><tr><th>指标</th><th>本月</th><th>同比</th><th>环比</th></tr>{kpi_rows}</table>
<h2>二、分布地图</h2><div class=maps>{maps or "<p>本单位无下级单位。</p>"}</div></section>
<section><h2>三、排名</h2><div class=ranks>{rankings or "<p>—</p>"}</div>
<h2>四、变化最大的单位（案件量，环比）</h2><table><tr><th>单位</th><th>上月</th><th>本月</th><th>变化</th></tr>{changed}</table>
<h2>五、预警</h2><table><tr><th>单位</th><th>类型</th><th>类别</th><th>观测</th><th>期望</th><th>发出</th><th>状态</th></tr>{alerts}</table>
</section></body></html>"""


def render(html_text: str, pngs: bool = True) -> Report:
    """The HTML printed to PDF by headless Chromium (offline: any request to another host
    is refused), and each A4 page as a PNG. Rendered in a thread of its own: Playwright's
    sync API refuses a thread whose event loop runs (a server's, a caller's)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="report") as pool:
        return pool.submit(_render, html_text, pngs).result()


def _render(html_text: str, pngs: bool) -> Report:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 794, "height": 1123})
            page.route(
                "**/*",
                lambda route: (
                    route.abort()
                    if not route.request.url.startswith(("data:", "about:"))
                    else route.continue_()
                ),
            )
            page.set_content(html_text, wait_until="load")
            page.evaluate("document.fonts.ready")
            pdf = page.pdf(
                format="A4",
                print_background=True,
                margin={"top": "14mm", "bottom": "14mm", "left": "14mm", "right": "14mm"},
            )
            images = []
            if pngs:
                page.emulate_media(media="print")
                total = page.evaluate("document.documentElement.scrollHeight")
                for top in range(0, max(total, 1), 1123):
                    images.append(
                        page.screenshot(
                            clip={"x": 0, "y": top, "width": 794, "height": min(1123, total - top)},
                            full_page=True,
                        )
                    )
        finally:
            browser.close()
    return Report(pdf, images, html_text)


def monthly_report(session: Session, unit: str, month: str, pngs: bool = True) -> Report:
    """The monthly report of ``unit`` (in the caller's scope) for ``month``."""
    try:
        data = gather(session, unit, month)
    except MetricsError as exc:
        raise ApiError(400, str(exc)) from None
    return render(report_html(data), pngs)


def write_report(report: Report, output: Path) -> list[Path]:
    """The PDF at ``output`` and a PNG per page beside it (``name-1.png``...)."""
    output.write_bytes(report.pdf)
    written = [output]
    for n, png in enumerate(report.pages, start=1):
        path = output.with_name(f"{output.stem}-{n}.png")
        path.write_bytes(png)
        written.append(path)
    return written
