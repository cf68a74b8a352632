"""The domain's fixed vocabularies, one source of truth: case categories (with their default
SLA), intake channels, workflow steps 接-约-办-访-评, outcomes, grid worker roles."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    sla_days: int  # default deadline after reporting
    group: str  # dispute, petition, hazard
    serious: bool = False  # counts in the safety index's serious component


CATEGORIES: tuple[Category, ...] = (
    Category("neighbour", "邻里纠纷", "Neighbour dispute", 15, "dispute"),
    Category("family", "婚姻家庭纠纷", "Family and marriage", 30, "dispute"),
    Category("labour", "劳资纠纷", "Labour and wages", 30, "dispute", serious=True),
    Category("land_housing", "土地房屋纠纷", "Land and housing", 30, "dispute", serious=True),
    Category("property", "物业纠纷", "Property management", 15, "dispute"),
    Category("traffic", "交通事故纠纷", "Traffic", 20, "dispute"),
    Category("consumer", "消费纠纷", "Consumer", 15, "dispute"),
    Category("medical", "医疗纠纷", "Medical", 30, "dispute", serious=True),
    Category("environment", "环境污染纠纷", "Environment", 20, "dispute"),
    Category("other_dispute", "其他纠纷", "Other disputes", 20, "dispute"),
    Category("petition", "信访事项", "Petition", 60, "petition", serious=True),
    Category("safety_hazard", "安全隐患", "Safety hazard", 7, "hazard", serious=True),
)
CATEGORY_BY_CODE = {c.code: c for c in CATEGORIES}


@dataclass(frozen=True)
class Channel:
    code: str
    name_zh: str
    name_en: str


CHANNELS: tuple[Channel, ...] = (
    Channel("hotline_12345", "12345热线", "12345 hotline"),
    Channel("police_110", "110非警务警情", "110 non-police"),
    Channel("grid_patrol", "网格巡查", "Grid patrol"),
    Channel("walk_in", "来访", "Walk-in"),
    Channel("online", "网上受理", "Online"),
)
CHANNEL_BY_CODE = {c.code: c for c in CHANNELS}

# 接-约-办-访-评: received, scheduled, handled (办结: the case is closed), visited, evaluated.
STEPS: tuple[str, ...] = ("received", "scheduled", "handled", "visited", "evaluated")
STEP_NAMES_ZH = {
    "received": "接",
    "scheduled": "约",
    "handled": "办",
    "visited": "访",
    "evaluated": "评",
}
CLOSED_STEPS = frozenset({"handled", "visited", "evaluated"})

OUTCOMES: tuple[str, ...] = (
    "mediated_success",  # 调解成功
    "mediation_failed",  # 调解不成
    "referred",  # 移交法院/部门
    "resolved",  # 办结 (no mediation needed: hazard removed, request answered)
    "withdrawn",  # 撤回
)
MEDIATION_OUTCOMES = frozenset({"mediated_success", "mediation_failed"})

GRID_WORKER_ROLES: tuple[str, ...] = ("leader", "full_time", "part_time")
FACILITY_KINDS: tuple[str, ...] = ("center", "linkage_station")
FACILITY_STATUSES: tuple[str, ...] = ("required", "under_construction", "built")

# The case desk's actions (分级分流) and the steps taken through it: code → (zh, en).
DESK_ACTIONS: dict[str, tuple[str, str]] = {
    "accept": ("受理", "Accept"),
    "dispatch": ("下派", "Dispatch"),
    "escalate": ("上报", "Escalate"),
    "transfer": ("转办", "Transfer"),
    "return": ("退回", "Return"),
    "schedule": ("约", "Schedule"),
    "handle": ("办", "Handle"),
    "visit": ("访", "Visit"),
    "evaluate": ("评", "Evaluate"),
    "note": ("备注", "Note"),
}
# levels whose closes count as resolved locally (就地化解): the village and its grids
LOCAL_LEVELS: tuple[str, ...] = ("village", "grid")
# functional departments (职能部门) a unit may have, by kind: code → (zh, en)
DEPARTMENT_KINDS: dict[str, tuple[str, str]] = {
    "police": ("派出所", "Police station"),
    "mediation": ("司法所（人民调解委员会）", "Justice office (mediation committee)"),
    "petition": ("信访办", "Petitions office"),
    "urban": ("城管", "Urban management"),
    "housing": ("住建", "Housing and construction"),
    "labour": ("劳动保障所", "Labour and social security"),
    "market": ("市场监管所", "Market regulation"),
    "environment": ("生态环境", "Ecology and environment"),
    "health": ("卫健", "Health"),
}


def desk_node(level: str | None, department_kind: str | None) -> str:
    """Where a case is on the desk's flow (分级分流): a level (``level:town``) or a kind of
    department at a level (``dept:town:labour``); the key of the Sankey's nodes and of the
    desk's rollups (``api.engine.domains.desk``)."""
    if department_kind:
        return f"dept:{level or ''}:{department_kind}"
    return f"level:{level or ''}"
