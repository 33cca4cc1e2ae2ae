"""Rendering: a real QR reader (zxing-cpp) reads back every image exactly; caching; options."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from qr import QRError, build_vietqr, render_png, render_svg
from qr import render as render_module
from qr.builder import MAX_AMOUNT
from tests.qr.vectors import ACB_DYNAMIC, MOMO_VIA_BVBANK, NAPAS_DYNAMIC, NAPAS_STATIC_CARD, PROMPTPAY

VIETNAMESE = build_vietqr(
    bin="970436",
    account="0123456789",
    amount=35000,
    purpose="Trả tiền rau",
    name_vi="Cô Ba bán rau",
    city_vi="Đà Nẵng",
)
LONGEST = build_vietqr(
    bin="970436",
    account="9" * 19,
    amount=MAX_AMOUNT,
    bill_number="B" * 25,
    purpose="p" * 25,
    reference="R" * 25,
    merchant_name="N" * 25,
    merchant_city="C" * 15,
    name_vi="Nguyễn Thị Hường Đặng Ưng",
    city_vi="Thừa Thiên Huế",
    mcc="5411",
    postal_code="1" * 10,
)
PAYLOADS = [NAPAS_DYNAMIC, NAPAS_STATIC_CARD, ACB_DYNAMIC, MOMO_VIA_BVBANK, PROMPTPAY, VIETNAMESE, LONGEST]


def read(image: Image.Image) -> str:
    """Return the text of the single QR code a real reader finds in ``image``."""
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    assert len(results) == 1
    return results[0].text


def rasterise(svg: str) -> Image.Image:
    """Draw the SVG's path of horizontal runs, the only shapes the renderer emits."""
    box = re.search(r'viewBox="0 0 (\d+) \1"', svg)
    assert box is not None
    side = int(box.group(1))
    image = Image.new("L", (side, side), 255)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", svg):
        for dx in range(int(width)):
            image.putpixel((int(x) + dx, int(y)), 0)
    return image.resize((side * 8, side * 8), Image.Resampling.NEAREST)


@pytest.mark.parametrize(
    "payload", PAYLOADS, ids=["napas", "card", "acb", "momo", "promptpay", "vi", "longest"]
)
def test_png_reads_back_exactly(payload: str) -> None:
    assert read(Image.open(io.BytesIO(render_png(payload)))) == payload


@pytest.mark.parametrize(
    "payload", PAYLOADS, ids=["napas", "card", "acb", "momo", "promptpay", "vi", "longest"]
)
def test_svg_reads_back_exactly(payload: str) -> None:
    assert read(rasterise(render_svg(payload))) == payload


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_every_error_correction_level_reads_back(level: str) -> None:
    assert read(Image.open(io.BytesIO(render_png(VIETNAMESE, error_correction=level)))) == VIETNAMESE


def test_png_geometry_quiet_zone_and_mode() -> None:
    modules = len(render_module.matrix(ACB_DYNAMIC))
    image = Image.open(io.BytesIO(render_png(ACB_DYNAMIC, box_size=3, border=4)))
    assert image.format == "PNG"
    assert image.mode == "1"
    assert image.size == ((modules + 8) * 3, (modules + 8) * 3)
    quiet = image.crop((0, 0, image.width, 12))
    assert quiet.getextrema() == (255, 255)
    assert Image.open(io.BytesIO(render_png(ACB_DYNAMIC, border=0, box_size=1))).size == (modules, modules)


def test_svg_is_one_compact_path() -> None:
    svg = render_svg(ACB_DYNAMIC, box_size=5, border=2)
    modules = len(render_module.matrix(ACB_DYNAMIC))
    assert svg.count("<path") == 1
    assert f'width="{(modules + 4) * 5}"' in svg
    assert f'viewBox="0 0 {modules + 4} {modules + 4}"' in svg
    assert len(svg) < 12_000


def test_higher_error_correction_needs_at_least_as_many_modules() -> None:
    assert len(render_module.matrix(LONGEST, "H")) >= len(render_module.matrix(LONGEST, "M"))


def test_identical_requests_are_cached() -> None:
    first = render_png(NAPAS_DYNAMIC)
    assert render_png(NAPAS_DYNAMIC) is first
    assert render_png(NAPAS_DYNAMIC, box_size=4) is not first
    svg = render_svg(NAPAS_DYNAMIC)
    assert render_svg(NAPAS_DYNAMIC) is svg
    info = render_module._png.cache_info()
    assert (info.hits, info.misses) == (1, 2)
    render_module.clear_cache()
    assert render_module._png.cache_info().currsize == 0


def test_broken_payloads_are_not_rendered() -> None:
    with pytest.raises(QRError):
        render_png(ACB_DYNAMIC[:-4] + "BBB5")
    with pytest.raises(QRError):
        render_svg("hello")
    assert read(Image.open(io.BytesIO(render_png("hello", validate=False)))) == "hello"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"box_size": 0}, "box_size"),
        ({"box_size": 101}, "box_size"),
        ({"box_size": 2.5}, "box_size"),
        ({"border": -1}, "border"),
        ({"border": 41}, "border"),
        ({"error_correction": "X"}, "error_correction"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_png(ACB_DYNAMIC, **options)
    with pytest.raises(ValueError, match=message):
        render_svg(ACB_DYNAMIC, **options)
