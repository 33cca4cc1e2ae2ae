"""CRC-16/CCITT-FALSE, the checksum EMVCo puts in element ``63``.

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR. ``binascii.crc_hqx``
is exactly this polynomial in C, so seeding it with 0xFFFF gives CCITT-FALSE at C speed;
a Python bit or table loop would dominate decode time.
"""

from __future__ import annotations

from binascii import crc_hqx

__all__ = ["crc16", "crc_hex"]


def crc16(data: str | bytes) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` (text is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode()
    return crc_hqx(data, 0xFFFF)


def crc_hex(data: str | bytes) -> str:
    """Return the checksum as the four uppercase hex digits EMVCo expects."""
    return f"{crc16(data):04X}"
