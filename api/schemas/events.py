"""Dispatch events at the edge: what a POST may carry (for the OpenAPI document) and how
its body is read into plain items for ``api.services.events.ingest_events``."""

from __future__ import annotations

import datetime as dt
import json

import orjson
from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 5000


class EventIn(BaseModel):
    """One dispatch event. A re-send of the same (source, external_id) is a late update:
    the fields it gives replace the stored ones, the ones it leaves out stay."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=32, description="the sending system, e.g. 110")
    external_id: str = Field(max_length=64)
    type: str | None = Field(None, description="crime, dispute, traffic, help, other")
    category: str | None = Field(None, description="a finer category of the type")
    priority: int | None = Field(None, ge=1, le=3, description="1 urgent .. 3 routine")
    received_at: dt.datetime | None = Field(None, description="without zone: Asia/Shanghai")
    set_off_at: dt.datetime | None = None
    on_scene_at: dt.datetime | None = None
    support_requested: bool | None = None
    support_at: dt.datetime | None = None
    cordon_ordered: bool | None = None
    cordon_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    force_kind: str | None = Field(
        None, description="police, unit_security, grid_patrol, volunteer"
    )
    patrol_unit_code: str | None = None
    outcome: str | None = None
    case_id: int | None = Field(None, description="the case this event became")
    lon: float | None = None
    lat: float | None = None
    crs: str | None = Field(None, description="wgs84 (default), gcj02 or cgcs2000")
    unit_code: str | None = None


class EventItem(BaseModel):
    """The fate of one item."""

    index: int
    status: str
    source: str | None = None
    external_id: str | None = None
    id: int | None = None
    reason: str | None = None
    changed: list[str] | None = None


class EventIngestOut(BaseModel):
    """Counts and one result per item, in the order sent."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    items: list[EventItem]


class BatchError(ValueError):
    """A body that is not one event or a list of events."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


FIELDS = frozenset(EventIn.model_fields)


def parse_events(body: bytes) -> tuple[list[dict], dict[int, str]]:
    """The items of a POST body (one object or a list of at most MAX_BATCH) as plain
    dicts, and the reasons of the items that are not objects or name unknown fields."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BatchError(400, f"malformed JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, list | dict):
        raise BatchError(422, "the body must be one event (a JSON object) or a list of events")
    if not items:
        raise BatchError(422, "the batch is empty")
    if len(items) > MAX_BATCH:
        raise BatchError(413, f"a batch holds at most {MAX_BATCH:,} events: split it")
    bad: dict[int, str] = {}
    out: list[dict] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            bad[i] = f"item {i} is not a JSON object"
            out.append({})
            continue
        unknown = sorted(set(item) - FIELDS)
        if unknown:
            bad[i] = f"unknown field(s) {', '.join(unknown)}"
        out.append(item)
    return out, bad
