"""A small MBTiles file built from a world's extent: solid raster tiles (a different
shade per zoom) covering the world's bounding box at each zoom of ``zooms``."""

from __future__ import annotations

import math
import sqlite3
import struct
import zlib
from pathlib import Path


def png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A solid ``size``×``size`` RGB PNG."""
    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def build_mbtiles(path: Path, bbox: tuple[float, float, float, float], zooms=range(0, 15)) -> int:
    """Write the MBTiles file; returns the number of tiles."""
    west, south, east, north = bbox
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE metadata (name text, value text);"
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer,"
        " tile_data blob);"
        "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);"
    )
    meta = {"name": "test world", "format": "png", "bounds": f"{west},{south},{east},{north}"}
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    count = 0
    for z in zooms:
        shade = 200 + (z * 3) % 50
        data = png((shade, shade, 235))
        x0, y0 = tile_xy(west, north, z)
        x1, y1 = tile_xy(east, south, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tms = (1 << z) - 1 - y
                conn.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, tms, data))
                count += 1
    conn.commit()
    conn.close()
    return count
