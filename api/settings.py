"""The one settings object. Every knob is an environment variable prefixed ``ZHILI_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration read from ``ZHILI_*`` environment variables (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="ZHILI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///zhili.db",
        description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://user@host/db",
    )
    read_database_url: str | None = Field(
        None,
        description="Optional PostgreSQL streaming replica of the database: requests that only "
        "read (figures, maps, exports, lists, the dashboard) read there, every write goes to "
        "database_url (docs/deploy.md)",
    )
    cache_dir: Path = Field(Path(".cache/zhili"), description="Disk cache for display geometry")
    timezone: str = Field("Asia/Shanghai", description="Local time zone of naive timestamps")
    min_denominator: int = Field(10, ge=1, description="Rates over fewer cases are low_count")
    token_ttl_days: int = Field(365, ge=1, description="Lifetime of API tokens")
    session_secret: str = Field("", description="Secret for dashboard session cookies")
    tile_url: str | None = Field(None, description="Optional intranet XYZ tile URL for the map")
    data_dir: Path = Field(
        Path("data"),
        description="The city's data folder: a basemap.mbtiles or basemap.pmtiles (raster "
        "tiles) there is served at /api/v1/tiles/{z}/{x}/{y} and drawn under the maps",
    )
    report_schedule: bool = Field(
        False,
        description="Render the scheduled units' monthly reports in the running server, "
        "once a month (else run `zhili report run-scheduled` from cron)",
    )
    wall_refresh_seconds: int = Field(60, ge=1, description="Wall display refresh interval")
    locate_tolerance_m: float = Field(
        50.0,
        ge=0,
        le=1000,
        description="A case point in no leaf unit but this close to one (metres on the "
        "ground) goes to the nearest leaf, flagged placed_by_tolerance; 0 turns it off",
    )
    reach_speed_kmh: float = Field(
        30.0,
        gt=0,
        le=200,
        description="Straight-line speed of a patrol leaving its base (km/h), for the area "
        "it reaches within the 5-minute target (docs/events.md): 30 km/h covers 2.5 km",
    )
    suppression_threshold: int = Field(
        5,
        ge=1,
        le=100,
        description="Special-population counts from 1 to this minus one are suppressed "
        "(shown as '<5'), with complementary suppression (docs/populations.md)",
    )
    protection_width: int = Field(
        5,
        ge=1,
        le=100,
        description="Every suppressed special-population count must stay uncertain over "
        "at least this many persons, whatever a reader combines (at most the threshold)",
    )
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest request body")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
