"""Spliced GeoJSON: the same collection as serialising it whole, as plain text, as a gzip
member and as a zlib stream (checksums checked by the decoders), with every number written
by numpy exactly as the rounded value it stands for."""

from __future__ import annotations

import gzip
import math
import zlib

import numpy as np
import orjson
import pytest

from api.engine.choropleth import feature_collection
from api.engine.spliced import (
    DECIMALS,
    FeatureOpenings,
    Tails,
    _dynamic_parts_by_row,
    collection_head,
    dynamic_parts,
    number_tails,
    splice,
    splice_gzip,
    splice_zlib,
    tails_of,
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
        "value": [None if i % 7 == 0 else round(i / 3, DECIMALS) for i in range(n)],
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


def _bodies(static, fragments, columns, meta):
    openings = FeatureOpenings(static, fragments)
    tails = tails_of(list(columns), list(columns.values()))
    head = collection_head(meta)
    return tails, [splice(head, openings, tails), splice_gzip(head, openings, tails),
                   splice_zlib(head, openings, tails)]  # fmt: skip


def test_spliced_numbers_equal_the_serialised_collection() -> None:
    """Numbers and booleans take the numpy path: padded with JSON whitespace, so the text
    differs from orjson's, but it parses to the very same collection."""
    static, fragments, columns = _world(3000)
    meta = {"parent": "C1", "level": "village", "breaks": [1.0, 2.5], "period": {"start": "x"}}
    tails, (plain, packed, zlibbed) = _bodies(static, fragments, columns, meta)
    assert tails.block is not None  # the numpy path
    assert orjson.loads(plain) == orjson.loads(_expected(static, fragments, columns, meta))
    assert gzip.decompress(packed) == plain  # checks the CRC-32 and the length
    assert zlib.decompress(zlibbed) == plain  # checks the Adler-32
    parsed = orjson.loads(plain)
    assert parsed["features"][0]["geometry"] is None
    assert parsed["features"][1]["properties"]["name"] == '村1 "quoted" \\ 社区'
    assert len(zlibbed) < len(plain)  # the openings are compressed


def test_strings_take_the_row_by_row_path_byte_for_byte() -> None:
    static, fragments, columns = _world(2500)  # > 64 KiB of tails: several stored blocks
    columns["note"] = [f"a,b {i}" for i in range(2500)]
    meta = {"parent": "C1", "level": "village"}
    tails, (plain, packed, zlibbed) = _bodies(static, fragments, columns, meta)
    assert tails.block is None
    assert plain == _expected(static, fragments, columns, meta)
    assert gzip.decompress(packed) == plain
    stream = zlib.decompressobj()
    assert stream.decompress(zlibbed) == plain and stream.eof and not stream.unused_data


def test_empty_collection() -> None:
    openings = FeatureOpenings({}, {})
    head = collection_head({"level": "grid"})
    tails = tails_of(["value"], [[]])
    assert orjson.loads(splice(head, openings, tails)) == {
        "type": "FeatureCollection", "level": "grid", "features": []}  # fmt: skip
    assert gzip.decompress(splice_gzip(head, openings, tails)) == splice(head, openings, tails)
    assert zlib.decompress(splice_zlib(head, openings, tails)) == splice(head, openings, tails)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_are_written_exactly_as_rounded(seed: int) -> None:
    """Every magnitude from millionths to just below 10⁹, both signs, values that round to
    zero or to a whole number, NaN: each slot parses to ``np.round(value, DECIMALS)``, the
    value the choropleth's table holds (None for NaN)."""
    rng = np.random.default_rng(seed)
    n = 5000
    values = rng.choice([-1, 1], n) * 10 ** rng.uniform(-8, 8.99, n)
    values[rng.random(n) < 0.05] = np.nan
    values[:8] = [0.0, -0.0, -4e-7, 5e-7, 1.5e-6, -999999.9999996, 12.0, 999_999_999.5]
    ints = rng.integers(-(10**9) + 1, 10**9, n)
    flags = rng.random(n) < 0.5
    tails = number_tails(["v", "i", "f"], [values, ints, flags])
    assert tails is not None and len(set(tails.lengths.tolist())) == 1
    got = [orjson.loads(b"{" + bytes(piece)[:-1]) for piece in tails.pieces]
    for row, v, i, f in zip(got, values.tolist(), ints.tolist(), flags.tolist(), strict=True):
        assert row["v"] == (None if math.isnan(v) else np.round(v, DECIMALS)), (row, v)
        assert row["i"] == i and row["f"] is f
    assert got[1]["v"] == 0 and got[2]["v"] == 0  # no "-0"
    assert got[6]["v"] == 12 and isinstance(got[6]["v"], int)


def test_numpy_and_row_by_row_tails_agree() -> None:
    """The numpy path and the row-by-row one give the same properties, and a column of
    strings (where commas may sit inside values) or of huge numbers takes the latter."""
    numbers = {"value": [1.5, None, 3e-6, -2.0], "low_count": [True, False, False, True],
               "class": [0, None, 4, 1], "share %": [np.float64(0.25), 1.0, 0.0, None]}  # fmt: skip
    names, columns = list(numbers), list(numbers.values())
    fast = tails_of(names, columns)
    assert fast.block is not None
    slow = _dynamic_parts_by_row(names, columns)
    assert [orjson.loads(b"{" + bytes(p)[:-1]) for p in fast.pieces] == [
        orjson.loads(b"{" + p[:-1]) for p in slow
    ]
    for odd in (["a,b", "c", "d", 'e"f'], [1e9, 1.0, 2.0, 3.0]):
        tails = tails_of([*names, "odd"], [*columns, odd])
        assert tails.block is None
        assert tails.pieces == _dynamic_parts_by_row([*names, "odd"], [*columns, odd])
    assert dynamic_parts(["value"], [[]]) == []


def test_long_properties_span_several_stored_blocks() -> None:
    """A feature whose numbers and texts exceed a stored block's 65,535 bytes still gives
    the same body, plain or compressed."""
    static, fragments, _ = _world(3)
    columns = {"note": ["x" * 70_000, "short", "界" * 3_000], "value": [1.0, None, 2.5]}
    meta = {"level": "village"}
    tails, (plain, packed, zlibbed) = _bodies(static, fragments, columns, meta)
    assert isinstance(tails, Tails) and tails.block is None
    assert plain == _expected(static, fragments, columns, meta)
    assert gzip.decompress(packed) == plain
    assert zlib.decompress(zlibbed) == plain
