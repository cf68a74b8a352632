"""Payloads of saved views and composed walls (POST /api/v1/views, PUT /api/v1/walls/{name})."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ViewSpec(BaseModel):
    """What a map view shows: unit (default: your home unit), level (default: the unit's
    children), metric, period preset or start/end, comparison, classes and layers."""

    model_config = ConfigDict(extra="forbid")

    unit: str | None = Field(None, max_length=32)
    level: str | None = Field(None, max_length=32)
    metric: str = Field("caseload", max_length=64)
    period: Literal["month", "quarter", "year", "30d"] | None = None
    start: str | None = Field(None, max_length=10)
    end: str | None = Field(None, max_length=10)
    compare: Literal["yoy", "prev", "none"] = "yoy"
    classes: Literal["quantiles", "natural_breaks", "equal_interval"] = "quantiles"
    layers: list[str] = Field(default_factory=list, max_length=8)


class NewView(BaseModel):
    """A view to save: its name, whether it is shared in your jurisdiction, its spec."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=120)
    shared: bool = False
    spec: ViewSpec = Field(default_factory=ViewSpec)


class WallItem(BaseModel):
    """One view on a wall: a saved view's slug, or a spec written here; its seconds."""

    model_config = ConfigDict(extra="forbid")

    view: str | None = Field(None, max_length=16)
    spec: ViewSpec | None = None
    seconds: int = Field(30, ge=5, le=3600)


class WallBody(BaseModel):
    """A wall as an admin composes it."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=120)
    unit: str | None = Field(None, max_length=32)
    views: list[WallItem] = Field(default_factory=list, max_length=12)
    kpis: list[str] = Field(default_factory=list, max_length=12)
    thresholds: dict[str, dict[Literal["above", "below"], float]] = Field(default_factory=dict)
    ticker: bool = True
    refresh_seconds: int = Field(60, ge=10, le=3600)
