"""The offline basemap: raster tiles from an MBTiles (SQLite, read with ``sqlite3``) or
PMTiles (read with the ``pmtiles`` library) file the city places in its data folder
(``settings.data_dir``), served by the app itself so that the map's style names no other
host. ``ZHILI_TILE_URL`` (an intranet tile server) still wins when it is set.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TILE_PATH = "/api/v1/tiles/{z}/{x}/{y}"
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class Basemap:
    """A tile file: its path and kind (mbtiles | pmtiles) and the tiles' media type."""

    path: Path
    kind: str
    media_type: str


def find_basemap(data_dir: Path) -> Basemap | None:
    """The first ``*.mbtiles`` or ``*.pmtiles`` file of ``data_dir`` (None: none)."""
    if not data_dir.is_dir():
        return None
    for pattern, kind in (("*.pmtiles", "pmtiles"), ("*.mbtiles", "mbtiles")):
        for path in sorted(data_dir.glob(pattern)):
            return _opened(path.resolve(), kind, path.stat().st_mtime)
    return None


@lru_cache(maxsize=8)
def _opened(path: Path, kind: str, mtime: float) -> Basemap:
    return Basemap(path, kind, MEDIA.get(_format(path, kind), "image/png"))


def _format(path: Path, kind: str) -> str:
    if kind == "mbtiles":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM metadata WHERE name = 'format'").fetchone()
        return (row[0] if row else "png").lower()
    from pmtiles.reader import MmapSource, Reader
    from pmtiles.tile import TileType

    with open(path, "rb") as f:
        header = Reader(MmapSource(f)).header()
    return {TileType.JPEG: "jpg", TileType.WEBP: "webp"}.get(header["tile_type"], "png")


_local = threading.local()


def read_tile(basemap: Basemap, z: int, x: int, y: int) -> bytes | None:
    """The tile z/x/y (XYZ scheme) of ``basemap``, or None when the file has none."""
    if basemap.kind == "mbtiles":
        conns = getattr(_local, "conns", None) or {}
        _local.conns = conns
        conn = conns.get(basemap.path)
        if conn is None:
            conn = conns[basemap.path] = sqlite3.connect(
                f"file:{basemap.path}?mode=ro", uri=True, check_same_thread=False
            )
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y),  # MBTiles rows count from the south (TMS)
        ).fetchone()
        return bytes(row[0]) if row else None
    from pmtiles.reader import MmapSource, Reader

    with open(basemap.path, "rb") as f:
        return Reader(MmapSource(f)).get(z, x, y)
