"""Words and number formats of the dashboard in Chinese (default) and English.

Metric names come from the metric registry and level names from the level table; this
module holds only the dashboard's own chrome (buttons, headings, legend notes).
"""

from __future__ import annotations

import math

LANGS = ("zh", "en")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("综治中心", "Governance center"),
    "metric": ("指标", "Metric"),
    "period": ("时段", "Period"),
    "compare": ("对比", "Compare"),
    "method": ("分级", "Classes"),
    "yoy": ("同比", "Year on year"),
    "prev": ("环比", "Period before"),
    "month": ("本月", "This month"),
    "quarter": ("本季度", "This quarter"),
    "year": ("本年", "This year"),
    "30d": ("近30天", "Last 30 days"),
    "custom": ("自定义", "Custom"),
    "quantiles": ("分位数", "Quantiles"),
    "natural_breaks": ("自然断点", "Natural breaks"),
    "equal_interval": ("等间距", "Equal intervals"),
    "group_caseload": ("案件", "Caseload"),
    "group_resolution": ("化解", "Resolution"),
    "group_grid": ("网格", "Grid network"),
    "group_risk": ("稳评", "Stability-risk register"),
    "suppressed_note": (
        "人数过少，为保护个人不予显示（含补充隐藏）",
        "too few persons: withheld to protect them (with complementary cells)",
    ),
    "metric_unavailable": (
        "没有指标“{metric}”，或您无权查看",
        "no metric '{metric}', or not one you may read",
    ),
    "group_populations": ("特殊人群", "Special populations"),
    "month_only": ("月份（按自然月发布）", "Month (published per calendar month)"),
    "no_data": ("无数据", "No data"),
    "loading": ("加载中…", "Loading…"),
    "no_data_note": ("该时段无案件或无分母", "no cases or no denominator in the period"),
    "low_count": ("样本过少", "Too few cases"),
    "low_count_note": ("分母不足{n}，不参与分级", "fewer than {n} in the denominator: not classed"),
    "export": ("导出地图", "Export map"),
    "keep_breaks": ("锁定分级", "Keep breaks"),
    "breaks_kept": ("分级已锁定，可跨镇比较", "breaks kept: compare across towns"),
    "export_table": ("导出 CSV", "Export CSV"),
    "value": ("数值", "Value"),
    "count": ("案件数", "Cases"),
    "change": ("变化", "Change"),
    "base_partial": ("基期不完整", "partial base"),
    "rank": ("排名", "Rank"),
    "name": ("名称", "Name"),
    "code": ("代码", "Code"),
    "trend": ("月度趋势", "Monthly trend"),
    "last_year": ("上年同期", "Same months last year"),
    "by_category": ("按类别", "By category"),
    "by_channel": ("按渠道", "By channel"),
    "by_type": ("按警情类型", "By event type"),
    "by_force_kind": ("按处警力量", "By responding force"),
    "by_shift": ("白天与夜间", "Day and night"),
    "by_none": ("分类构成", "Breakdown"),
    "no_breakdown": ("该指标无分类构成", "This figure has no breakdown"),
    "ranking": ("下级排名", "Ranking of the units below"),
    "open_cases": ("在办及超期案件", "Open and overdue cases"),
    "overdue": ("超期", "Overdue"),
    "open": ("在办", "Open"),
    "reported": ("受理时间", "Reported"),
    "deadline": ("期限", "Deadline"),
    "status": ("环节", "Step"),
    "category": ("类别", "Category"),
    "channel": ("渠道", "Channel"),
    "no_children": ("本单位无下级，显示本级详情", "This unit has no units below: its own detail"),
    "alert_pattern": ("预警依据：实际与预期", "Alert evidence: observed vs expected"),
    "data_as_of": ("数据截至", "Data as of"),
    "stale": ("数据未更新", "data not refreshed"),
    "lang_switch": ("English", "中文"),
    "vs": ("较", "vs"),
    "none": ("无", "none"),
    "wall": ("大屏", "Wall"),
    "login_required": ("请先登录", "Please log in"),
    "not_found": ("无此单位或不在您的辖区内", "No such unit in your jurisdiction"),
    "page_not_found": ("无此页面", "No such page"),
    "home": ("返回首页", "Home"),
    "back_home": ("返回本辖区首页", "Back to your home unit"),
    "previous_yoy": ("上年同期", "Same period last year"),
    "previous_prev": ("上一时段", "Period before"),
    "change_suffix": ("变化", " change"),
    "none_classed": (
        "无单位参与分级（样本过少或无数据）",
        "no unit classed: too few cases or no data",
    ),
    "network_now": (
        "网格网络的现状，不随时段变化：无月度趋势",
        "The grid network as it is now, whatever the period: no monthly trend",
    ),
    "refreshed_at": ("刷新于", "Refreshed"),
    "alerts": ("预警", "Alerts"),
    "no_alerts": ("暂无预警", "No open alerts"),
    "smooth_eb": ("EB平滑", "EB smoothing"),
    "smooth_eb_note": (
        "经验贝叶斯平滑：人口少的单位向上级比率收缩，仅适用于每万人比率",
        "Empirical Bayes: small units shrunk towards their parent's rate (per-capita rates)",
    ),
    "smoothed": (
        "已平滑（经验贝叶斯，向上级比率收缩）",
        "smoothed (empirical Bayes, towards the parent's rate)",
    ),
    "smoothed_flat": (
        "各单位差异不超过随机波动：平滑后全部等于上级比率",
        "the units differ no more than chance would make them: all smoothed to the parent's rate",
    ),
    "page_failed": ("页面出错，已记录", "The page failed; the error is logged"),
    "start_date": ("开始日期", "Start date"),
    "end_date": ("结束日期", "End date"),
    "refused": ("无法显示此视图，接口答复：", "This view cannot be shown; the API says: "),
    "back_default": ("返回默认视图", "Back to the default view"),
    "rank_of": ("第{rank}/{total}名", "#{rank} of {total}"),
    "cases_open_none": ("暂无在办案件", "No open cases"),
}


# The registry's units (Chinese) in English: a metric's title names its unit.
UNITS_EN = {
    "件": "cases",
    "件/万人": "cases per 10,000 residents",
    "天": "days",
    "分": "points",
    "人": "people",
    "户": "households",
    "个": "",
    "%": "%",
}


def unit_text(unit: str, lang: str) -> str:
    """A metric's unit in ``lang`` (``""``: none worth writing)."""
    return UNITS_EN.get(unit, unit) if lang == "en" else unit


def metric_title(label: str, unit: str, lang: str) -> str:
    """A metric's name with its unit in brackets: ``案件量 (件)``, ``Caseload (cases)``."""
    shown = unit_text(unit, lang)
    return f"{label} ({shown})" if shown else label


def t(key: str, lang: str, **fmt: object) -> str:
    """The dashboard's word for ``key`` in ``lang`` (``zh`` or ``en``)."""
    zh, en = TEXT[key]
    text = en if lang == "en" else zh
    return text.format(**fmt) if fmt else text


def pick(zh: str, en: str, lang: str) -> str:
    """``zh`` or ``en`` by language (for names kept in pairs: metrics, levels)."""
    return en if lang == "en" else zh


def _is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_count(value: float | None, lang: str) -> str:
    """A count: ``12,345`` in English, ``1.23万`` in Chinese from ten thousand up."""
    if _is_missing(value):
        return "—"
    if lang != "en" and abs(value) >= 10_000:
        if abs(value) >= 100_000_000:
            return f"{value / 100_000_000:.2f}亿"
        return f"{value / 10_000:.2f}万"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def format_value(value: float | None, fmt: str, lang: str) -> str:
    """A metric value by its registry format: ``percent`` (a share, 0..1), ``integer``,
    ``decimal1``, ``decimal2``; counts of ten thousand and more in 万 in Chinese."""
    if _is_missing(value):
        return "—"
    if fmt == "percent":
        return f"{value * 100:.1f}%"
    if fmt == "integer" or abs(value) >= 10_000:
        return format_count(round(value) if fmt == "integer" else value, lang)
    return f"{value:,.2f}" if fmt == "decimal2" else f"{value:,.1f}"


def format_change(current: float | None, previous: float | None, fmt: str, lang: str) -> str:
    """The change against the comparison period: points for rates, percent for the rest."""
    if _is_missing(current) or _is_missing(previous):
        return "—"
    if fmt == "percent":
        diff = (current - previous) * 100
        unit = " pt" if lang == "en" else "个百分点"
        return f"{diff:+.1f}{unit}"
    if previous == 0:
        return "—"
    return f"{(current - previous) / abs(previous) * 100:+.1f}%"
