"""Render payloads as PNG or SVG QR codes.

``qrcode`` does the QR encoding proper: segment optimisation, version fit, Reed-Solomon and
the choice of mask. Turning its module matrix into an image is done here, because that is
where the time goes in ``qrcode``'s own image classes: its PIL image draws one rectangle per
dark module and its SVG images build an element tree. Here the PNG is one small 1-bit image
scaled up with nearest-neighbour resampling, and the SVG is a single path of horizontal runs.

Defaults follow the scanners' needs: error correction M, a 4-module quiet zone and 10-pixel
modules. Identical requests are answered from a cache keyed by payload, format and size, so a
vendor's static code is rendered once; the cache holds ``CACHE_SIZE`` images per format.
Payloads are decoded first (``validate=True``) so chopay never prints a code that does not
parse.
"""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from qr.vietqr import decode

__all__ = ["CACHE_SIZE", "clear_cache", "matrix", "render_png", "render_svg"]

CACHE_SIZE = 512
_LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}
_DARK, _LIGHT = b"\x00", b"\xff"


def _options(box_size: int, border: int, error_correction: str) -> None:
    if not isinstance(box_size, int) or isinstance(box_size, bool) or not 1 <= box_size <= 100:
        raise ValueError("box_size must be an integer from 1 to 100 pixels")
    if not isinstance(border, int) or isinstance(border, bool) or not 0 <= border <= 40:
        raise ValueError("border must be an integer from 0 to 40 modules")
    if error_correction not in _LEVELS:
        raise ValueError("error_correction must be one of L, M, Q, H")


@lru_cache(maxsize=CACHE_SIZE)
def matrix(payload: str, error_correction: str = "M") -> tuple[tuple[bool, ...], ...]:
    """Return the QR module matrix of ``payload``, without quiet zone; ``True`` is dark."""
    code = qrcode.QRCode(error_correction=_LEVELS[error_correction], border=0)
    code.add_data(payload)
    code.make(fit=True)
    return tuple(tuple(bool(cell) for cell in row) for row in code.modules)


def render_png(
    payload: str, *, box_size: int = 10, border: int = 4, error_correction: str = "M", validate: bool = True
) -> bytes:
    """Return ``payload`` as a black-on-white 1-bit PNG."""
    _options(box_size, border, error_correction)
    return _png(payload, box_size, border, error_correction, validate)


def render_svg(
    payload: str, *, box_size: int = 10, border: int = 4, error_correction: str = "M", validate: bool = True
) -> str:
    """Return ``payload`` as a compact SVG: one path, sized ``box_size`` pixels per module."""
    _options(box_size, border, error_correction)
    return _svg(payload, box_size, border, error_correction, validate)


def clear_cache() -> None:
    """Forget every rendered image and module matrix."""
    matrix.cache_clear()
    _png.cache_clear()
    _svg.cache_clear()


@lru_cache(maxsize=CACHE_SIZE)
def _png(payload: str, box_size: int, border: int, error_correction: str, validate: bool) -> bytes:
    if validate:
        decode(payload)
    modules = matrix(payload, error_correction)
    side = len(modules) + 2 * border
    quiet = _LIGHT * side
    margin = _LIGHT * border
    rows = [quiet] * border
    rows.extend(margin + b"".join(_DARK if cell else _LIGHT for cell in row) + margin for row in modules)
    rows.extend([quiet] * border)
    image = Image.frombytes("L", (side, side), b"".join(rows))
    if box_size > 1:
        image = image.resize((side * box_size, side * box_size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("1", dither=Image.Dither.NONE).save(out, format="PNG")
    return out.getvalue()


@lru_cache(maxsize=CACHE_SIZE)
def _svg(payload: str, box_size: int, border: int, error_correction: str, validate: bool) -> str:
    if validate:
        decode(payload)
    modules = matrix(payload, error_correction)
    side = len(modules) + 2 * border
    runs = []
    for y, row in enumerate(modules, start=border):
        x = 0
        width = len(row)
        while x < width:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < width and row[x]:
                x += 1
            runs.append(f"M{start + border} {y}h{x - start}v1h-{x - start}z")
    pixels = side * box_size
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    )
