"""Spliced GeoJSON: the same bytes as serialising the whole collection, and a gzip body
that any decoder takes (CRC and length checked)."""

from __future__ import annotations

import gzip
import math
import zlib

import orjson

from api.metrics.choropleth import feature_collection
from api.metrics.spliced import (
    FeatureOpenings,
    _dynamic_parts_by_row,
    collection_head,
    dynamic_parts,
    splice,
    splice_gzip,
)

GEOMETRY = (
    b'{"type":"Polygon","coordinates":[[[120.1,30.2],[120.2,30.2],[120.2,30.3],[120.1,30.2]]]}'
)


def _world(n: int):
    static = {
        f"U{i:05d}": {"code": f"U{i:05d}", "name": f"村{i} \"quoted\" \\ 社区", "level": "village",
                      "parent_code": None if i == 0 else "T1", "is_leaf": False, "current": True}
        for i in range(n)
    }  # fmt: skip
    fragments = {code: GEOMETRY for code in list(static)[1:]}  # the first has no geometry
    columns = {
        "value": [None if i % 7 == 0 else i / 3 for i in range(n)],
        "count": [float(i) for i in range(n)],
        "low_count": [i < 10 for i in range(n)],
        "change_pct": [math.nan if i % 5 == 0 else -i / 10 for i in range(n)],
        "class": [None if i % 7 == 0 else i % 5 for i in range(n)],
    }
    columns["change_pct"] = [None if isinstance(v, float) and math.isnan(v) else v
                             for v in columns["change_pct"]]  # fmt: skip
    return static, fragments, columns


def _expected(static, fragments, columns, meta) -> bytes:
    names = list(columns)
    values_per_row = zip(*columns.values(), strict=True)
    rows = [{**static[code], **dict(zip(names, values, strict=True))}
            for code, values in zip(static, values_per_row, strict=True)]  # fmt: skip
    return feature_collection(rows, fragments, meta)


def test_spliced_body_equals_the_serialised_collection() -> None:
    static, fragments, columns = _world(3000)
    meta = {"parent": "C1", "level": "village", "breaks": [1.0, 2.5], "period": {"start": "x"}}
    openings = FeatureOpenings(static, fragments)
    tails = dynamic_parts(list(columns), list(columns.values()))
    head = collection_head(meta)
    body = splice(head, openings, tails)
    assert body == _expected(static, fragments, columns, meta)
    parsed = orjson.loads(body)
    assert parsed["features"][0]["geometry"] is None
    assert parsed["features"][1]["properties"]["name"] == '村1 "quoted" \\ 社区'


def test_spliced_gzip_is_one_valid_member() -> None:
    static, fragments, columns = _world(2500)  # > 64 KiB of numbers: several stored blocks
    meta = {"parent": "C1", "level": "village"}
    openings = FeatureOpenings(static, fragments)
    tails = dynamic_parts(list(columns), list(columns.values()))
    head = collection_head(meta)
    plain = splice(head, openings, tails)
    packed = splice_gzip(head, openings, tails)
    assert gzip.decompress(packed) == plain  # checks the CRC-32 and the length
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert stream.decompress(packed) == plain and stream.eof and not stream.unused_data
    assert len(packed) < len(plain)  # the openings are compressed


def test_empty_collection() -> None:
    openings = FeatureOpenings({}, {})
    head = collection_head({"level": "grid"})
    assert orjson.loads(splice(head, openings, [])) == {
        "type": "FeatureCollection", "level": "grid", "features": []}  # fmt: skip
    assert gzip.decompress(splice_gzip(head, openings, [])) == splice(head, openings, [])


def test_dynamic_parts_per_column_equal_per_row() -> None:
    """The fast path (columns split at commas) and the row-by-row one agree, and a column
    of strings (where commas may sit inside values) takes the row-by-row one."""
    import numpy as np

    numbers = {"value": [1.5, None, 3e-9, -2.0], "low_count": [True, False, False, True],
               "class": [0, None, 4, 1], "share %": [np.float64(0.25), 1.0, 0.0, None]}  # fmt: skip
    names, columns = list(numbers), list(numbers.values())
    assert dynamic_parts(names, columns) == _dynamic_parts_by_row(names, columns)
    texts = {**numbers, "note": ["a,b", "c", "d", 'e"f']}
    names, columns = list(texts), list(texts.values())
    parts = dynamic_parts(names, columns)
    assert parts == _dynamic_parts_by_row(names, columns)
    assert orjson.loads(b"{" + parts[0][:-1])["note"] == "a,b"
    assert dynamic_parts(["value"], [[]]) == []


def test_long_properties_span_several_stored_blocks() -> None:
    """A feature whose numbers and texts exceed a stored block's 65,535 bytes still gives
    the same body, gzipped or not."""
    static, fragments, _ = _world(3)
    columns = {"note": ["x" * 70_000, "short", "界" * 3_000], "value": [1.0, None, 2.5]}
    meta = {"level": "village"}
    openings = FeatureOpenings(static, fragments)
    tails = dynamic_parts(list(columns), list(columns.values()))
    head = collection_head(meta)
    plain = splice(head, openings, tails)
    assert plain == _expected(static, fragments, columns, meta)
    assert gzip.decompress(splice_gzip(head, openings, tails)) == plain
