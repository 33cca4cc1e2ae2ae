"""Payloads the tests share: the public NAPAS conformance vectors and a few other schemes.

Identities are made up (NGUYEN VAN A, account 0123456789) except in the public vectors.
"""

from __future__ import annotations

from qr import build_emvco

NAPAS_DYNAMIC = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA"
    "530370454061800005802VN62340107NPS68690819thanh toan don hang63042E2E"
)
NAPAS_STATIC_CARD = (
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC53037045802VN63044F52"
)
ACB_DYNAMIC = (
    "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA"
    "5303704540410005802VN62150811Chuyen tien6304BBB8"
)
ACB_BAD_CRC = ACB_DYNAMIC[:-4] + "BBB5"

# MoMo's receive code: VietQR through BVBank plus a bare three-digit value in tag 80.
MOMO_VIA_BVBANK = (
    "00020101021138620010A00000072701320006970454011899MM24011M348750800208QRIBFTTA"
    "53037045802VN62190515MOMOW2W3487508080030466304EBC8"
)

PROMPTPAY = build_emvco(
    [
        ("00", "01"),
        ("01", "11"),
        ("29", [("00", "A000000677010111"), ("01", "0066812345678")]),
        ("53", "764"),
        ("58", "TH"),
    ]
)
PAYNOW = build_emvco(
    [
        ("00", "01"),
        ("01", "12"),
        ("26", [("00", "SG.PAYNOW"), ("01", "2"), ("02", "201234567A"), ("03", "0")]),
        ("52", "0000"),
        ("53", "702"),
        ("54", "10.00"),
        ("58", "SG"),
        ("59", "NGUYEN VAN A"),
        ("60", "Singapore"),
    ]
)
QRIS = build_emvco(
    [
        ("00", "01"),
        ("01", "11"),
        ("26", [("00", "ID.CO.EXAMPLE.WWW"), ("01", "936000000000000001")]),
        ("51", [("00", "ID.CO.QRIS.WWW"), ("02", "ID1020000000001"), ("03", "UMI")]),
        ("52", "5411"),
        ("53", "360"),
        ("58", "ID"),
        ("59", "NGUYEN VAN A"),
        ("60", "JAKARTA"),
        ("61", "10110"),
    ]
)
VNPAY = build_emvco(
    [
        ("00", "01"),
        ("01", "11"),
        ("26", [("00", "A000000775"), ("01", "0123456789")]),
        ("52", "5977"),
        ("53", "704"),
        ("58", "VN"),
        ("59", "NGUYEN VAN A"),
        ("60", "HANOI"),
        ("62", [("03", "CUA HANG A"), ("07", "QUAY01")]),
    ]
)
MOMO_TEMPLATE = build_emvco(
    [
        ("00", "01"),
        ("01", "11"),
        ("53", "704"),
        ("58", "VN"),
        ("80", [("00", "VN.MOMO.EXAMPLE"), ("01", "0123456789")]),
    ]
)
UNKNOWN_SCHEME = build_emvco(
    [
        ("00", "01"),
        ("01", "11"),
        ("30", [("00", "XX.EXAMPLE.PAY"), ("01", "42")]),
        ("53", "978"),
        ("58", "FR"),
    ]
)
# A wallet code in the style some Vietnamese apps print: primitive ids 02-11, Vietnamese
# text outside tag 64, point of initiation 10, no currency or country.
LENIENT_WALLET = build_emvco(
    [
        ("00", "01"),
        ("01", "10"),
        ("02", "01"),
        ("03", "908401"),
        ("04", "ExampleWallet"),
        ("07", "0123456789"),
        ("08", "Nguyễn Văn A"),
        ("09", "10000"),
        ("10", "704"),
        ("11", "content"),
    ]
)
