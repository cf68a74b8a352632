"""GeoJSON bodies spliced from pre-serialised, pre-compressed feature openings.

A choropleth of every grid of a metro city is 16 MB of GeoJSON, of which the geometry and
each unit's name and codes never change between requests: only a few numbers per feature
do. Each feature's opening (type, id, geometry and the static properties) is serialised
once per layer, and deflated once into a byte-aligned piece (``Z_SYNC_FLUSH``, fresh
history: such pieces can be concatenated into one deflate stream). A request then writes
only the numbers, wraps each feature's numbers (its "tail") as an uncompressed ("stored")
deflate block between the pieces, and closes the stream with its checksum.

The numbers are written by a compiled loop (numba), each value in a slot of its column's
width padded with JSON whitespace (``"value":  12.5 ,``): every tail of a response has one
width, and no Python code runs per value. Numbers carry at most ``DECIMALS`` decimals
(the choropleth rounds its columns to that first, so that its CSV and GeoPackage say the
same).

The checksum is what decides the cost. gzip ends with the CRC-32 of the whole plain text:
one pass over 16 MB per request. A zlib stream (``Content-Encoding: deflate``, which every
browser, curl, GDAL and QGIS accept) ends with an Adler-32, which is two sums that combine
arithmetically: the openings' sums are computed once per layer, the tails' per request,
and nothing else is read again.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numba
import numpy as np
import orjson

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no mtime, unknown OS
ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary
FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty block of fixed Huffman codes
MAX_STORED = 65_535
CLOSE = b"]}"  # after the last feature
DECIMALS = 6  # the most decimals a number of the map carries (written as three pairs)
_LIMIT = 1e9  # from this on a value is written by orjson (below it, in millionths, < 2**53)
_ADLER = 65_521
_NARROW_ROW = 4_000  # the weighted sum of a row this wide fits 32 bits: 255 × 4000²/2 < 2³¹
_MINUS, _POINT, _ZERO = (ord(c) for c in "-.0")
_NULL = np.frombuffer(b"null", np.uint8)
_TRUE, _FALSE = np.frombuffer(b"true ", np.uint8), np.frombuffer(b"false", np.uint8)


def deflate_piece(raw: bytes, level: int = 1) -> bytes:
    """``raw`` as deflate blocks that stand alone and end on a byte boundary."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def stored_blocks(raw: bytes | memoryview) -> bytes:
    """``raw`` as non-final stored (uncompressed) deflate blocks."""
    out = bytearray()
    for i in range(0, len(raw), MAX_STORED):
        chunk = raw[i : i + MAX_STORED]
        out += _stored_header(len(chunk)) + chunk
    return bytes(out)


def _stored_header(n: int) -> bytes:
    return b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF)


def _adler_terms(pieces: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """For each piece, its byte sum S and weighted sum T = Σ byte × (length − offset),
    modulo 65521, read off its own Adler-32 (which is 1 + S, length + T)."""
    lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
    checksums = np.fromiter(map(zlib.adler32, pieces), np.int64, len(pieces))
    return ((checksums & 0xFFFF) - 1) % _ADLER, ((checksums >> 16) - lengths) % _ADLER


def _adler32(s: np.ndarray, t: int, lengths: np.ndarray) -> int:
    """The Adler-32 of segments laid end to end, from each one's byte sum S and the sum of
    their weighted sums T (``_adler_terms``): A = 1 + Σ S, and
    B = n + Σ byte × (bytes from it to the end) = n + Σ T + Σ S × (bytes after the segment)."""
    after = np.cumsum(lengths[::-1])[::-1] - lengths
    a = (1 + int(s.sum())) % _ADLER
    b = int(lengths.sum()) + t + int(((s % _ADLER) * (after % _ADLER)).sum())
    return ((b % _ADLER) << 16) | a


class FeatureOpenings:
    """The features' openings of one layer, in the layer's order: for each unit code, its
    feature up to the first dynamic property, raw and deflated, with its Adler-32 terms.
    Every opening but the first starts with the comma that separates it from the feature
    before. ``static`` maps each code, in order, to the properties that open its
    ``properties`` object (code, name, level...); ``fragments`` to its geometry."""

    def __init__(self, static: dict[str, dict], fragments: dict[str, bytes]) -> None:
        self.codes: list[str] = list(static)
        self.raw: list[bytes] = []
        self.deflated: list[bytes] = []
        for n, (code, properties) in enumerate(static.items()):
            opening = (
                (b',{"type":"Feature","id":' if n else b'{"type":"Feature","id":')
                + orjson.dumps(code)
                + b',"geometry":'
                + fragments.get(code, b"null")
                + b',"properties":'
                + orjson.dumps(properties)[:-1]
                + b","
            )
            self.raw.append(opening)
            self.deflated.append(deflate_piece(opening))
        self.lengths = np.array([len(r) for r in self.raw], np.int64)
        self.s, weighted = _adler_terms(self.raw)  # for the Adler-32 of a zlib body
        self.t = int(weighted.sum()) % _ADLER
        self.shown: object = None  # what the caller built them for (see ``spliced_collection``)


class Tails:
    """What closes each feature: its dynamic properties, ``"value":12.5,"count":3}}``, in
    the layer's order; ``block`` holds them as rows of one width when they were written by
    ``number_tails``."""

    def __init__(
        self,
        pieces: list,
        lengths: np.ndarray,
        block: np.ndarray | None = None,
        sums: tuple[np.ndarray, int] | None = None,
    ):
        self.pieces = pieces
        self.lengths = lengths
        self.block = block
        self._sums = sums

    def adler_terms(self) -> tuple[np.ndarray, int]:
        """Each tail's byte sum, and the sum of their weighted sums (see ``_adler_terms``)."""
        if self._sums is None:
            s, t = _adler_terms(self.pieces)
            self._sums = s, int(t.sum())
        return self._sums


@numba.njit(cache=True, nogil=True)
def _millionths(v):  # pragma: no cover - compiled
    """|v| in millionths, rounded half to even (as ``np.round(v, DECIMALS)`` rounds)."""
    return np.int64(np.rint(abs(v) * 10**DECIMALS))


@numba.njit(cache=True, nogil=True)
def _decimals_needed(fraction):  # pragma: no cover - compiled
    """How many of a fraction's six decimals (in millionths) are shown: none after the
    last non-zero one."""
    if fraction == 0:
        return 0
    needed = DECIMALS
    while fraction % 10 == 0:
        fraction //= 10
        needed -= 1
    return needed


_PAIRS = np.frombuffer("".join(f"{n:02d}" for n in range(100)).encode(), np.uint8)


@numba.njit(cache=True, nogil=True)
def _column_shapes(values):  # pragma: no cover - compiled
    """Per column of finite numbers (NaN: null): the most digits of a whole part, the most
    decimals, and whether a value is written with a minus."""
    columns = values.shape[1]
    largest = np.zeros(columns, np.int64)  # whole part
    decimals = np.zeros(columns, np.int64)
    signs = np.zeros(columns, np.int64)
    for i in range(values.shape[0]):
        for j in range(columns):
            v = values[i, j]
            if np.isnan(v):
                continue
            m = _millionths(v)
            largest[j] = max(largest[j], m // 10**DECIMALS)
            if decimals[j] < DECIMALS:  # (most columns of rates get there in a few rows)
                decimals[j] = max(decimals[j], _decimals_needed(m % 10**DECIMALS))
            if v < 0 and m > 0:  # no "-0"
                signs[j] = 1
    ints = np.ones(columns, np.int64)
    for j in range(columns):
        while largest[j] >= 10:
            largest[j] //= 10
            ints[j] += 1
    return ints, decimals, signs


@numba.njit(cache=True, nogil=True)
def _write_numbers(block, values, first, point):  # pragma: no cover - compiled
    """Write each value into its row of ``block`` (the row template, spaces in the slots):
    the whole part right-aligned before the column's ``point`` (a byte offset in the row),
    the decimals from it; NaN as null from the slot's ``first`` byte. Returns the rows'
    Adler-32 terms (``_row_sums``), summed while each row is still in the CPU's cache (a
    pass of its own over the block cost a map of every grid 1 ms)."""
    sums = np.zeros(block.shape[0], np.int64)
    weighted = 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v, at = values[i, j], point[j]
            if np.isnan(v):
                for k in range(4):
                    block[i, first[j] + k] = _NULL[k]
                continue
            m = _millionths(v)
            whole, fraction = m // 10**DECIMALS, m % 10**DECIMALS
            k = at  # the whole part, two digits at a time from the right
            while whole >= 10:
                pair = 2 * (whole % 100)
                block[i, k - 2], block[i, k - 1] = _PAIRS[pair], _PAIRS[pair + 1]
                whole //= 100
                k -= 2
            if whole or k == at:
                k -= 1
                block[i, k] = _ZERO + whole
            if v < 0 and m > 0:
                block[i, k - 1] = _MINUS
            needed = _decimals_needed(fraction)
            if needed:
                block[i, at] = _POINT
                pairs = (fraction // 10_000, fraction // 100 % 100, fraction % 100)
                for d in range(needed):  # (DECIMALS is 6: three pairs)
                    block[i, at + 1 + d] = _PAIRS[2 * pairs[d // 2] + d % 2]
        sums[i], t = _row_sums(block[i])
        weighted = (weighted + t) % _ADLER
    return sums, weighted


@numba.njit(cache=True, nogil=True)
def _row_sums(row):  # pragma: no cover - compiled
    """A row's byte sum and its weighted sum (see ``_adler_terms``; the weighted one modulo
    65521)."""
    width = row.shape[0]
    if width > _NARROW_ROW:
        s, t = 0, 0
        for c in range(width):
            s += row[c]
            t += row[c] * (width - c)
        return s, t % _ADLER
    s32, t32 = np.int32(0), np.int32(0)  # 32-bit sums: 1.3 -> 0.9 ms for the city's grids
    for c in range(width):
        byte = np.int32(row[c])
        s32 += byte
        t32 += byte * np.int32(width - c)
    return np.int64(s32), np.int64(t32) % _ADLER


def _is_number_type(kind: type) -> bool:
    """None, or a number that is not a boolean."""
    if issubclass(kind, bool | np.bool_):
        return False
    return kind is type(None) or issubclass(kind, int | float | np.integer | np.floating)


def _as_array(column: Sequence | np.ndarray) -> np.ndarray | None:
    """A column as booleans or floats (NaN for None); None when it holds anything else."""
    arr = np.asarray(column)
    if arr.dtype.kind == "O":
        if not all(map(_is_number_type, set(map(type, arr.tolist())))):
            return None
        arr = arr.astype(float)
    if arr.dtype == bool:
        return arr
    return arr.astype(np.float64) if arr.dtype.kind in "iuf" else None


def number_tails(names: Sequence[str], columns: Sequence) -> Tails | None:
    """The tails of columns of numbers (NaN or None: null) and booleans, as one block of
    rows of one width: each value in a slot of its column's width padded with spaces,
    numbers with at most ``DECIMALS`` decimals (trailing zeros dropped), written by a
    compiled loop. None when a column holds anything else, or a number of ±1e9 or more:
    use ``dynamic_parts``."""
    arrays = [_as_array(c) for c in columns]
    if not arrays or any(a is None for a in arrays) or not len(arrays[0]):
        return None
    n = len(arrays[0])
    numeric = [a for a in arrays if a.dtype != bool]
    values = np.column_stack(numeric) if numeric else np.zeros((n, 0))
    if np.any(np.abs(values) >= _LIMIT):  # (NaN compares False)
        return None
    ints, decimals, signs = (a.tolist() for a in _column_shapes(values))
    numeric_widths = iter(  # (whole part with its sign, slot width) of each numeric column
        (sign + whole, max(sign + whole + (1 + d if d else 0), 4))  # 4 at least: "null"
        for whole, d, sign in zip(ints, decimals, signs, strict=True)
    )
    slots = [(0, 5) if a.dtype == bool else next(numeric_widths) for a in arrays]
    keys = [(b"," if k else b"") + orjson.dumps(name) + b":" for k, name in enumerate(names)]
    template = b"".join(key + b" " * w for key, (_, w) in zip(keys, slots, strict=True)) + b"}}"
    block = np.empty((n, len(template)), np.uint8)
    block[:] = np.frombuffer(template, np.uint8)
    first, point, at = [], [], 0
    for key, a, (before_point, width) in zip(keys, arrays, slots, strict=True):
        at += len(key)
        if a.dtype == bool:
            block[:, at : at + 5] = np.where(a[:, None], _TRUE, _FALSE)
        else:
            first.append(at)
            point.append(at + before_point)
        at += width
    sums, weighted = _write_numbers(
        block, values, np.array(first, np.int64), np.array(point, np.int64)
    )
    # one bytes object per row, made in C: viewed as fixed-width byte strings (which would
    # drop trailing NUL bytes; a row ends with "}}")
    pieces = block.view(f"S{block.shape[1]}").ravel().tolist()
    return Tails(pieces, np.full(n, block.shape[1], np.int64), block, (sums, int(weighted)))


def dynamic_parts(names: Sequence[str], columns: Sequence[Sequence]) -> list[bytes]:
    """Each row's dynamic properties as the rest of its feature: ``"a":1,"b":null}}``.
    Values are numbers, booleans or null: each column is serialised in one call and split
    at its commas, then each row is one ``%`` format."""
    if not columns or not len(columns[0]):
        return []
    texts = []
    for column in columns:
        text = orjson.dumps(column, option=orjson.OPT_SERIALIZE_NUMPY)
        if b'"' in text:  # a string: commas may not separate values
            return _dynamic_parts_by_row(names, columns)
        texts.append(text[1:-1].split(b","))
    row = b",".join(orjson.dumps(name).replace(b"%", b"%%") + b":%b" for name in names) + b"}}"
    return [row % values for values in zip(*texts, strict=True)]


def _dynamic_parts_by_row(names: Sequence[str], columns: Sequence[Sequence]) -> list[bytes]:
    return [
        orjson.dumps(dict(zip(names, values, strict=True)), option=orjson.OPT_SERIALIZE_NUMPY)[1:]
        + b"}"
        for values in zip(*columns, strict=True)
    ]


def tails_of(names: Sequence[str], columns: Sequence) -> Tails:
    """The tails of the columns: by ``number_tails`` when they are numbers and booleans,
    else by ``dynamic_parts`` (one row at a time)."""
    found = number_tails(names, columns)
    if found is not None:
        return found
    pieces = dynamic_parts(names, columns)
    return Tails(pieces, np.array([len(p) for p in pieces], np.int64))


def collection_head(meta: dict) -> bytes:
    """``{"type":"FeatureCollection", ...meta..., "features":[``."""
    whole = orjson.dumps({"type": "FeatureCollection", **meta, "features": []})
    assert whole.endswith(b'"features":[]}')
    return whole[:-2]


def _interleave(*columns: list) -> list:
    """``a0, b0, a1, b1...`` of the lists ``a, b...`` (all of one length)."""
    parts: list = [b""] * (len(columns) * len(columns[0]))
    for k, column in enumerate(columns):
        parts[k :: len(columns)] = column
    return parts


def splice(head: bytes, openings: FeatureOpenings, tails: Tails) -> bytes:
    """The feature collection as plain bytes (``tails`` close ``openings``' features)."""
    if not tails.pieces:
        return head + CLOSE
    return b"".join([head, *_interleave(openings.raw, tails.pieces), CLOSE])


def _deflated_features(openings: FeatureOpenings, tails: Tails) -> list:
    """The deflate blocks of the features: each deflated opening, then its tail stored."""
    if not tails.pieces:
        return []
    longest = int(tails.lengths.max())
    if longest > MAX_STORED:  # a tail of long strings
        return _interleave(openings.deflated, [stored_blocks(t) for t in tails.pieces])
    if tails.block is not None:
        headers = [_stored_header(longest)] * len(tails.pieces)
    else:
        headers = [_stored_header(n) for n in tails.lengths.tolist()]
    return _interleave(openings.deflated, headers, tails.pieces)


def splice_gzip(head: bytes, openings: FeatureOpenings, tails: Tails) -> bytes:
    """The same feature collection as one gzip member (``Content-Encoding: gzip``)."""
    plain = splice(head, openings, tails)  # for the CRC-32: one pass in C
    trailer = struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF)
    return b"".join([GZIP_HEADER, stored_blocks(head), *_deflated_features(openings, tails),
                     stored_blocks(CLOSE), FINAL_EMPTY_BLOCK, trailer])  # fmt: skip


def splice_zlib(head: bytes, openings: FeatureOpenings, tails: Tails) -> bytes:
    """The same feature collection as one zlib stream (``Content-Encoding: deflate``), its
    Adler-32 combined from the openings' terms (computed once) and the tails' (numpy)."""
    (head_s, close_s), (head_t, close_t) = _adler_terms([head, CLOSE])
    tail_s, tail_t = tails.adler_terms() if tails.pieces else (np.zeros(0, np.int64), 0)
    s = np.concatenate([[head_s], _interleave_array(openings.s, tail_s), [close_s]])
    t = int(head_t + openings.t + tail_t + close_t) % _ADLER
    lengths = np.concatenate(
        [[len(head)], _interleave_array(openings.lengths, tails.lengths), [len(CLOSE)]]
    )
    trailer = struct.pack(">I", _adler32(s, t, lengths))
    return b"".join([ZLIB_HEADER, stored_blocks(head), *_deflated_features(openings, tails),
                     stored_blocks(CLOSE), FINAL_EMPTY_BLOCK, trailer])  # fmt: skip


def _interleave_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(len(a) + len(b), np.int64)
    out[0::2], out[1::2] = a, b
    return out
