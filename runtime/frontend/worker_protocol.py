"""Message framing between espeak.py and the espeak worker process.

Each message is two little-endian uint32 (header length, payload length), a
UTF-8 JSON header and a binary payload (the int16 samples, or nothing).
"""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

FRAME_HEADER = struct.Struct("<II")  # (JSON header bytes, payload bytes)


def encode_message(header: dict, payload: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode("utf-8")
    return FRAME_HEADER.pack(len(encoded), len(payload)) + encoded + payload


def write_message(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stream.write(encode_message(header, payload))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_message(stream: BinaryIO) -> tuple[dict, bytes] | None:
    """The next (header, payload), or None at a clean or truncated end of stream."""
    sizes = _read_exactly(stream, FRAME_HEADER.size)
    if sizes is None:
        return None
    header_size, payload_size = FRAME_HEADER.unpack(sizes)
    header = _read_exactly(stream, header_size)
    payload = _read_exactly(stream, payload_size)
    if header is None or payload is None:
        return None
    return json.loads(header), payload
