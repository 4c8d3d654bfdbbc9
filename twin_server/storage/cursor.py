"""Opaque pagination cursors over a backend's sequence numbers."""

from __future__ import annotations

import base64
import binascii


def encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    """Raises ValueError for anything `encode` did not produce."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor this server issued") from None
    prefix, _, number = text.partition(":")
    if prefix != "seq" or not number.isdigit() or len(number) > 18:
        raise ValueError("not a cursor this server issued")
    return int(number)
