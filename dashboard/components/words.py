"""The words of the map views, saved views, walls, layers and the pivot in Chinese and
English (kept apart from ``dashboard.i18n`` so the pages that use them own them)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "map_level": ("地图层级", "Map level"),
    "layers": ("图层", "Layers"),
    "layer_facilities": ("中心与联动站", "Centers & stations"),
    "layer_alerts": ("预警", "Alerts"),
    "suggested_base": ("建议新设点位, 新增覆盖警情", "suggested new base, events gained"),
    "built": ("已建成", "Built"),
    "under_construction": ("在建", "Under construction"),
    "required": ("应建未建", "Required, not built"),
    "video": ("视频联网", "Video link"),
    "save_view": ("保存视图", "Save view"),
    "view_name": ("视图名称", "View name"),
    "shared": ("辖区共享", "Share in my jurisdiction"),
    "saved_views": ("已保存视图", "Saved views"),
    "saved": ("已保存", "Saved"),
    "pivot": ("透视表", "Pivot"),
    "rows": ("行", "Rows"),
    "columns": ("列", "Columns"),
    "interval": ("粒度", "Interval"),
    "total": ("合计", "Total"),
    "unit": ("单位", "Unit"),
    "category": ("类别", "Category"),
    "channel": ("来源渠道", "Channel"),
    "day": ("日", "Day"),
    "week": ("周", "Week"),
    "month": ("月", "Month"),
    "ticker": ("预警滚动", "Alerts"),
    "no_data": ("无数据", "No data"),
    "no_view": ("没有这个视图", "No such view"),
    "no_wall": ("没有这个大屏", "No such wall"),
    "no_alerts": ("暂无预警", "No open alerts"),
    "metric": ("指标", "Metric"),
    "period": ("时段", "Period"),
    "show": ("显示", "Show"),
    "back": ("返回", "Back"),
    "no_unit": ("没有这个单位，或其下没有单位", "No such unit, or no units below it"),
    "no_pivot": ("无法生成这个透视表", "This pivot cannot be made"),
}


def w(key: str, lang: str) -> str:
    """The word ``key`` in ``lang`` (zh or en); the key itself when there is none."""
    zh, en = WORDS.get(key, (key, key))
    return en if lang == "en" else zh
