"""GeoJSON bodies spliced from pre-serialised, pre-compressed feature openings.

A choropleth of every grid of a metro city is 16 MB of GeoJSON, of which the geometry and
each unit's name and codes never change between requests: only a few numbers per feature
do. Each feature's opening (type, id, geometry and the static properties) is serialised
once per layer, and deflated once into a byte-aligned piece (``Z_SYNC_FLUSH``, fresh
history: such pieces can be concatenated into one deflate stream). A request then
serialises only the numbers, wraps them as uncompressed ("stored") deflate blocks between
the pieces, and closes the gzip member with the CRC-32 of the whole text. The body is
byte for byte the GeoJSON the generic path would give; gzipped, it costs one pass of
CRC-32 instead of compressing megabytes per request.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import orjson

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no mtime, unknown OS
FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty block of fixed Huffman codes
MAX_STORED = 65_535
# the header of a non-final stored block of each length a feature's numbers can take
STORED_HEADERS = [b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF) for n in range(4096)]


def deflate_piece(raw: bytes, level: int = 1) -> bytes:
    """``raw`` as deflate blocks that stand alone and end on a byte boundary."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def stored_blocks(raw: bytes) -> bytes:
    """``raw`` as non-final stored (uncompressed) deflate blocks."""
    out = bytearray()
    for i in range(0, len(raw), MAX_STORED):
        chunk = raw[i : i + MAX_STORED]
        out += b"\x00" + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk
    return bytes(out)


class FeatureOpenings:
    """The features' openings of one layer, in the layer's order: for each unit code, its
    feature up to the first dynamic property, raw and deflated. Every opening but the first
    starts with the comma that separates it from the feature before. ``static`` maps each
    code, in order, to the properties that open its ``properties`` object (code, name,
    level...); ``fragments`` to its geometry."""

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


def collection_head(meta: dict) -> bytes:
    """``{"type":"FeatureCollection", ...meta..., "features":[``."""
    whole = orjson.dumps({"type": "FeatureCollection", **meta, "features": []})
    assert whole.endswith(b'"features":[]}')
    return whole[:-2]


def _interleave(*columns: list[bytes]) -> list[bytes]:
    """``a0, b0, a1, b1...`` of the lists ``a, b...`` (all of one length)."""
    parts: list[bytes] = [b""] * (len(columns) * len(columns[0]))
    for k, column in enumerate(columns):
        parts[k :: len(columns)] = column
    return parts


def splice(head: bytes, openings: FeatureOpenings, tails: list[bytes]) -> bytes:
    """The feature collection as plain bytes (``tails[i]`` closes ``openings``' feature i)."""
    if not tails:
        return head + b"]}"
    return b"".join([head, *_interleave(openings.raw, tails), b"]}"])


def splice_gzip(head: bytes, openings: FeatureOpenings, tails: list[bytes]) -> bytes:
    """The same feature collection as one gzip member (``Content-Encoding: gzip``): the
    deflated openings, each tail as a stored block after it."""
    plain = splice(head, openings, tails)  # for the CRC-32: one pass in C
    if not tails:
        features = []
    elif max(map(len, tails)) < len(STORED_HEADERS):
        headers = [STORED_HEADERS[len(tail)] for tail in tails]
        features = _interleave(openings.deflated, headers, tails)
    else:  # a tail of long strings
        features = _interleave(openings.deflated, [stored_blocks(t) for t in tails])
    trailer = struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF)
    return b"".join(
        [
            GZIP_HEADER,
            stored_blocks(head),
            *features,
            stored_blocks(b"]}"),
            FINAL_EMPTY_BLOCK,
            trailer,
        ]
    )
