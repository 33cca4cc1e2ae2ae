"""``chopay qr``: encode, decode, render and banks, through the top-level command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image

from tests.qr.vectors import ACB_BAD_CRC, ACB_DYNAMIC, NAPAS_DYNAMIC, NAPAS_STATIC_CARD


def test_encode_prints_the_payload(cli: click.Group, qr_runner: CliRunner) -> None:
    args = ["qr", "encode", "--bin", "970403", "--account", "0011012345678", "--amount", "180000"]
    args += ["--bill", "NPS6869", "--purpose", "thanh toan don hang"]
    result = qr_runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == NAPAS_DYNAMIC + "\n"


def test_encode_card_service(cli: click.Group, qr_runner: CliRunner) -> None:
    args = ["qr", "encode", "--bin", "970403", "--account", "9704031101234567", "--service", "QRIBFTTC"]
    result = qr_runner.invoke(cli, args)
    assert result.stdout.strip() == NAPAS_STATIC_CARD


def test_encode_vietnamese_name_and_city_fill_tag_64(cli: click.Group, qr_runner: CliRunner) -> None:
    args = ["qr", "encode", "--bin", "970436", "--account", "0123456789", "--name", "Cô Ba bán rau"]
    args += ["--city", "Đà Nẵng", "--purpose", "Trả tiền rau"]
    result = qr_runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = result.stdout.strip()
    assert "5913Co Ba ban rau6007Da Nang" in payload
    assert "0113Cô Ba bán rau0207Đà Nẵng" in payload
    assert "0812Tra tien rau" in payload


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--purpose", "x" * 30], "purpose"),
        (["--amount", "5000", "--initiation", "static"], "initiation"),
        (["--mcc", "12"], "mcc"),
    ],
)
def test_encode_refuses_bad_fields(
    cli: click.Group, qr_runner: CliRunner, extra: list[str], field: str
) -> None:
    result = qr_runner.invoke(cli, ["qr", "encode", "--bin", "970436", "--account", "0123456789", *extra])
    assert result.exit_code == 1
    assert f"invalid_field: {field}:" in result.stderr
    assert result.stdout == ""


def test_encode_unknown_bin(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "encode", "--bin", "123456", "--account", "0123456789"])
    assert result.exit_code == 1
    assert "bin" in result.stderr


def test_decode_prints_fields_and_issues(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "decode", NAPAS_DYNAMIC])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "bank           970403 STB Sacombank" in lines
    assert "amount         180,000 VND" in lines
    assert "purpose        thanh toan don hang" in lines
    assert "issues         none" in lines


def test_decode_lists_issues(cli: click.Group, qr_runner: CliRunner) -> None:
    lower = NAPAS_DYNAMIC[:-4] + "2e2e"
    result = qr_runner.invoke(cli, ["qr", "decode", lower])
    assert result.exit_code == 0
    assert "issues         1" in result.stdout
    assert "crc_lowercase" in result.stdout


def test_decode_json_is_the_documented_shape(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "decode", ACB_DYNAMIC, "--json"])
    assert result.exit_code == 0
    shape = json.loads(result.stdout)
    assert shape["valid"] is True
    assert (shape["bin"], shape["amount"], shape["crc"]) == ("970416", 1000, "BBB8")
    assert shape["additional"]["purpose"] == "Chuyen tien"
    assert shape["issues"] == []


def test_decode_broken_input_exits_1_with_code_and_offset(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "decode", ACB_BAD_CRC])
    assert result.exit_code == 1
    assert "crc_mismatch at offset 113" in result.stderr


def test_decode_broken_input_json(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "decode", "--json", ACB_BAD_CRC])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "error": {
            "code": "crc_mismatch",
            "offset": 113,
            "message": "CRC is BBB5 but the payload's data gives BBB8",
            "expected": "BBB8",
            "found": "BBB5",
        },
    }


def test_decode_reads_stdin_and_strips_line_ends(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "decode", "-", "--json"], input=ACB_DYNAMIC + "\r\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["crc"] == "BBB8"


def test_render_png_and_svg(cli: click.Group, qr_runner: CliRunner, tmp_path: Path) -> None:
    png = tmp_path / "code.png"
    result = qr_runner.invoke(cli, ["qr", "render", NAPAS_DYNAMIC, "-o", str(png), "--box-size", "6"])
    assert result.exit_code == 0, result.output
    assert str(png) in result.stdout
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.read_bytes())))
    assert [code.text for code in found] == [NAPAS_DYNAMIC]
    svg = tmp_path / "code.SVG"
    result = qr_runner.invoke(cli, ["qr", "render", NAPAS_DYNAMIC, "--output", str(svg), "--ec", "H"])
    assert result.exit_code == 0, result.output
    assert svg.read_text(encoding="utf-8").startswith("<svg ")


def test_render_refuses_other_formats_and_broken_input(
    cli: click.Group, qr_runner: CliRunner, tmp_path: Path
) -> None:
    result = qr_runner.invoke(cli, ["qr", "render", NAPAS_DYNAMIC, "-o", str(tmp_path / "code.jpg")])
    assert result.exit_code == 2
    assert ".png or .svg" in result.output
    result = qr_runner.invoke(cli, ["qr", "render", ACB_BAD_CRC, "-o", str(tmp_path / "code.png")])
    assert result.exit_code == 1
    assert "crc_mismatch at offset 113" in result.stderr
    assert not (tmp_path / "code.png").exists()


def test_banks_lists_everything_with_the_source(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "banks"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) >= 61
    assert "source:" in lines[-1]
    assert "as of" in lines[-1]


def test_banks_query_ignores_case_and_diacritics(cli: click.Group, qr_runner: CliRunner) -> None:
    for query in (["ĐÔNG", "Á"], ["dong", "a", "bank"], ["970406"], ["VIKKI"]):
        result = qr_runner.invoke(cli, ["qr", "banks", *query])
        assert result.exit_code == 0
        assert result.stdout.splitlines()[0].startswith("970406 VIKKI")


def test_banks_json_and_no_match(cli: click.Group, qr_runner: CliRunner) -> None:
    result = qr_runner.invoke(cli, ["qr", "banks", "oceanbank", "--json"])
    assert json.loads(result.stdout)[0]["code"] == "MBV"
    result = qr_runner.invoke(cli, ["qr", "banks", "no such bank"])
    assert result.exit_code == 1
    assert "no bank matches" in result.stderr


@pytest.mark.parametrize(
    ("command", "wording"),
    [
        ([], "Encode, decode and render VietQR"),
        (["encode"], "Build a VietQR payload"),
        (["decode"], "Decode a payload"),
        (["render"], "Render a payload"),
        (["banks"], "List banks and e-wallets"),
    ],
)
def test_every_command_explains_itself(
    cli: click.Group, qr_runner: CliRunner, command: list[str], wording: str
) -> None:
    result = qr_runner.invoke(cli, ["qr", *command, "--help"])
    assert result.exit_code == 0
    assert wording in result.stdout
