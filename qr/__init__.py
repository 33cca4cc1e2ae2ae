"""VietQR and EMVCo QR codes: decode, build, render, and the bank directory.

A pure library: it imports neither Flask nor SQLAlchemy nor rq, so tools and the offline
auditor can use it on its own.

>>> from qr import build_vietqr, decode
>>> payload = build_vietqr(bin="970436", account="0123456789", amount=50000, purpose="rau cai")
>>> decode(payload).amount
50000

Modules: :mod:`qr.tlv` (element scanner), :mod:`qr.crc`, :mod:`qr.errors` (the ``QRError``
tree), :mod:`qr.vietqr` (``decode`` and the payload model), :mod:`qr.checks` (field-level
issues), :mod:`qr.builder` (``build_vietqr``), :mod:`qr.text` (Vietnamese text),
:mod:`qr.banks` (directory), :mod:`qr.render` (PNG and SVG), :mod:`qr.schemes` (constants).
"""

from __future__ import annotations

from qr.banks import Bank, all_banks, directory_info
from qr.banks import by_bin as bank_by_bin
from qr.banks import find as find_bank
from qr.banks import search as search_banks
from qr.builder import build_emvco, build_vietqr
from qr.checks import Issue
from qr.crc import crc_hex
from qr.errors import BuildError, CRCMismatch, DecodeError, MalformedTemplate, QRError
from qr.render import render_png, render_svg
from qr.vietqr import AdditionalData, Payload, decode

__all__ = [
    "AdditionalData",
    "Bank",
    "BuildError",
    "CRCMismatch",
    "DecodeError",
    "Issue",
    "MalformedTemplate",
    "Payload",
    "QRError",
    "all_banks",
    "bank_by_bin",
    "build_emvco",
    "build_vietqr",
    "crc_hex",
    "decode",
    "directory_info",
    "find_bank",
    "render_png",
    "render_svg",
    "search_banks",
]
