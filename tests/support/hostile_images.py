"""Image files made byte by byte: headers claiming huge sizes, bombs, and damaged files."""

from __future__ import annotations

import io
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG signature and IHDR chunk, with no pixel data after them."""
    return PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth,
                                                       colour_type, 0, 0, 0))


def claiming_png(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` and whose data is a few zero rows."""
    return (png_header(width, height) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def bomb_png(width: int, height: int) -> bytes:
    """A complete, valid black 1-bit PNG: tiny on disk, `width`×`height` pixels once decoded."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then 8 pixels a byte
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (png_header(width, height, bit_depth=1) + _chunk(b"IDAT", data)
            + _chunk(b"IEND", b""))


def real_png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def half_png(width: int = 300, height: int = 300) -> bytes:
    """A real PNG cut in the middle of its pixel data."""
    from PIL import Image

    pixels = bytes((i * 7919) % 251 for i in range(width * height))  # compresses poorly
    buffer = io.BytesIO()
    Image.frombytes("L", (width, height), pixels).save(buffer, format="PNG")
    whole = buffer.getvalue()
    return whole[: len(whole) // 2]


#: Sixteen bytes that say "a 4000×4000 colour PPM" and hold no pixel.
PPM_16_BYTES = b"P6 4000 4000 255"
#: Sixteen bytes of a grey PPM header whose maximum value pillow refuses.
PPM_BAD_MAXVAL = b"P5 300 300 70000"
