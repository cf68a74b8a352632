"""Case intake and workflow payloads (POST/PATCH /api/v1/cases).

A case in: ``source``, ``external_id``, ``category``, ``channel``, ``reported_at`` (ISO 8601;
a time without zone is Asia/Shanghai), location as ``lon``/``lat`` (with ``crs``: wgs84,
gcj02 or cgcs2000) or as ``unit_code`` (a current village or grid code), ``description``
(trimmed, at most 2,000 characters) and ``deadline`` (default: the category's SLA).
Unknown fields are refused, so no complainant name or phone can slip in.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from api.domain import OUTCOMES, STEPS
from api.services.cases import MAX_DESCRIPTION

MAX_BATCH = 5000

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Step = Literal[STEPS[1], STEPS[2], STEPS[3], STEPS[4]]  # 约 办 访 评 (接 is the intake itself)
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


def _json_number(value: object) -> object:
    """A coordinate is a JSON number: text ("121.5") or true/false is a wrong type."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


def _iso_text(value: object) -> object:
    """A time is ISO 8601 text: a bare number (a Unix time?) is a wrong type."""
    if value is not None and not isinstance(value, str | dt.datetime):
        raise ValueError("must be an ISO 8601 date-time text, e.g. 2025-03-05T14:22:00+08:00")
    return value


Coordinate = Annotated[float | None, BeforeValidator(_json_number)]
Moment = Annotated[dt.datetime, BeforeValidator(_iso_text)]


class CaseIn(BaseModel):
    """One case as an intake system sends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The sending system, e.g. 12345, 110, gridapp; with external_id the key."
    )
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    category: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="A category code or its Chinese name (see api/domain.py)."
    )
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    reported_at: Moment
    lon: Coordinate = Field(None, allow_inf_nan=False)
    lat: Coordinate = Field(None, allow_inf_nan=False)
    crs: Literal["wgs84", "gcj02", "cgcs2000"] = "wgs84"
    unit_code: Code | None = Field(
        None, description="A current unit with none below it: a village or grid code."
    )
    description: str | None = Field(
        None, description=f"Trimmed; at most {MAX_DESCRIPTION:,} characters."
    )
    deadline: Moment | None = None

    @model_validator(mode="after")
    def _located(self) -> CaseIn:
        if self.unit_code is None and (self.lon is None or self.lat is None):
            raise ValueError("give a location: lon and lat, or unit_code")
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat")
        return self


class ItemResult(BaseModel):
    """What happened to one item of a batch."""

    index: int
    status: Literal["created", "unchanged", "updated", "rejected"]
    id: int | None = None
    source: str | None = None
    external_id: str | None = None
    reason: str | None = None
    changed: list[str] | None = Field(None, description="For updated: the fields changed.")


class IngestOut(BaseModel):
    """Counts and one result per item, in the order sent."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    items: list[ItemResult]


class CaseAdvance(BaseModel):
    """Advance a case one step along 接-约-办-访-评."""

    model_config = ConfigDict(extra="forbid")

    step: Step = Field(description="scheduled (约), handled (办), visited (访), evaluated (评)")
    at: Moment | None = Field(None, description="When it happened (default now).")
    outcome: Outcome | None = Field(None, description="Required when the step is handled.")
    satisfaction: int | None = Field(None, ge=1, le=5, description="1-5, for evaluated.")

    @model_validator(mode="after")
    def _fits_step(self) -> CaseAdvance:
        if self.step == "handled" and self.outcome is None:
            raise ValueError("outcome is required when the case is handled (办)")
        if self.step != "handled" and self.outcome is not None:
            raise ValueError("outcome is recorded with the handled (办) step only")
        if self.step == "evaluated" and self.satisfaction is None:
            raise ValueError("satisfaction 1-5 is required when the case is evaluated (评)")
        if self.step != "evaluated" and self.satisfaction is not None:
            raise ValueError("satisfaction is recorded with the evaluated (评) step only")
        return self


class CaseOut(BaseModel):
    """A case as listed: no personal data exists to return."""

    id: int
    source: str
    external_id: str
    category: str
    channel: str
    description: str | None
    reported_at: dt.datetime
    lon: float | None
    lat: float | None
    unit_code: str
    village_code: str | None
    grid_code: str | None
    placed_by_tolerance: bool = Field(
        description="The point lies in no leaf unit but within the locate tolerance "
        "(ZHILI_LOCATE_TOLERANCE_M) of this one, the nearest: placed in it."
    )
    status: str
    received_at: dt.datetime | None
    scheduled_at: dt.datetime | None
    handled_at: dt.datetime | None
    visited_at: dt.datetime | None
    evaluated_at: dt.datetime | None
    outcome: str | None
    satisfaction: int | None
    deadline: dt.datetime
    overdue: bool
    handling_unit_code: str | None = Field(
        None, description="分级分流: the unit (any level) handling the case now"
    )
    department_id: int | None = Field(None, description="the department handling it, if any")
    version: int = Field(1, description="send it back with an action; a stale one is a 409")
    # in a work queue (queue=mine) only
    accepted: bool | None = Field(None, description="受理: its handler accepted it")
    due_soon: bool | None = Field(None, description="open, deadline within 2 days")
    awaiting: str | None = Field(None, description="visit or evaluate: the follow-up due")


class CasePage(BaseModel):
    """One page of cases, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[CaseOut]
    next_cursor: str | None


# ---------------------------------------------------------------- parsing a POST body


NOT_JSON_NUMBERS = (
    "malformed JSON: NaN, Infinity and -Infinity are not JSON numbers (RFC 8259); "
    "send a finite number, or null, or leave the field out"
)


class BatchError(ValueError):
    """The body as a whole cannot be read: nothing is stored (HTTP 400/413/422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (complainant names or phones are never accepted)"
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def parse_batch(body: bytes) -> tuple[list[tuple[int, CaseIn]], dict[int, str], bool]:
    """The cases of a POST body (one object or a list of at most MAX_BATCH): the valid
    items with their index, the reasons of the invalid ones, and whether it was a list.

    NaN and Infinity literals are not JSON (RFC 8259), though Python's json module writes
    them: a body holding them is refused whole (400), saying so."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BatchError(400, f"malformed JSON: {exc}") from None
        raise BatchError(400, NOT_JSON_NUMBERS) from None
    is_list = isinstance(data, list)
    if not is_list and not isinstance(data, dict):
        raise BatchError(422, "the body must be one case (a JSON object) or a list of cases")
    items = data if is_list else [data]
    if not items:
        raise BatchError(422, "the batch is empty")
    if len(items) > MAX_BATCH:
        raise BatchError(
            413, f"a batch holds at most {MAX_BATCH:,} cases, this one {len(items):,}: split it"
        )
    good: list[tuple[int, CaseIn]] = []
    bad: dict[int, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            bad[i] = f"item {i} is not a JSON object"
            continue
        try:
            good.append((i, CaseIn.model_validate(item)))
        except ValidationError as exc:
            bad[i] = _describe(exc)
    return good, bad, is_list


class CaseActionIn(BaseModel):
    """One action on a case (分级分流): 受理 accept, 下派 dispatch, 上报 escalate, 转办
    transfer, 退回 return, the steps schedule/handle/visit/evaluate, or a note."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=16)
    version: int = Field(description="the case's version as you read it (409 if stale)")
    key: str | None = Field(
        None, max_length=64, description="your unique key: an action sent twice is done once"
    )
    to_unit: str | None = Field(None, max_length=32)
    department: int | None = None
    reason: str | None = Field(None, max_length=2000)
    outcome: str | None = Field(None, max_length=24)
    satisfaction: int | None = Field(None, ge=1, le=5)
