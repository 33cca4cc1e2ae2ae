"""EMVCo ids, field limits, VietQR services and the owners of known GUIDs.

Numbers here come from EMVCo QR Code Specification for Payment Systems, Merchant-Presented
Mode (v1.1), and from the NAPAS VietQR specification, which profiles it for Vietnam.
"""

from __future__ import annotations

__all__ = [
    "ADDITIONAL_FIELDS",
    "MAX_PAYLOAD",
    "MERCHANT_ACCOUNT_IDS",
    "NAPAS_GUID",
    "SERVICES",
    "STRICT_TEMPLATE_IDS",
    "TOP_LIMITS",
    "UNRESERVED_IDS",
    "VND",
    "scheme_of_guid",
]

NAPAS_GUID = "A000000727"
"""The NAPAS application id that marks tag 38 as VietQR."""

VND = "704"

MAX_PAYLOAD = 512
"""EMVCo's upper bound on a whole payload, in characters."""

SERVICES: dict[str, str] = {
    "QRIBFTTA": "transfer to account",
    "QRIBFTTC": "transfer to card",
    "QRPUSH": "merchant payment",
    "QRCASH": "cash withdrawal",
}

MERCHANT_ACCOUNT_IDS = frozenset(f"{n:02d}" for n in range(26, 52))
UNRESERVED_IDS = frozenset(f"{n:02d}" for n in range(80, 100))
# Templates whose content must parse as TLV or the payload is rejected. Unreserved templates
# (80-99) are parsed too, but leniently: MoMo codes in circulation put a bare three-digit
# value in tag 80.
STRICT_TEMPLATE_IDS = MERCHANT_ACCOUNT_IDS | {"62", "64"}

TOP_LIMITS: dict[str, tuple[int, str]] = {
    "52": (4, "merchant category code"),
    "53": (3, "currency"),
    "54": (13, "amount"),
    "58": (2, "country"),
    "59": (25, "merchant name"),
    "60": (15, "merchant city"),
    "61": (10, "postal code"),
}
"""Maximum length and name of the top-level primitive fields EMVCo bounds."""

MAX_AMOUNT = 10 ** TOP_LIMITS["54"][0] - 1
"""The largest amount EMVCo's 13-character field (54) can hold, in đồng: chopay's bound on money."""

ADDITIONAL_FIELDS: dict[str, str] = {
    "01": "bill_number",
    "02": "mobile",
    "03": "store",
    "04": "loyalty",
    "05": "reference",
    "06": "customer",
    "07": "terminal",
    "08": "purpose",
}
"""Sub-ids of the additional data template (62) and the names chopay gives them."""

ADDITIONAL_LIMIT = 25

_GUID_OWNERS: tuple[tuple[str, str], ...] = (
    (NAPAS_GUID, "napas"),
    ("A000000775", "vnpay"),
    ("A000000677", "promptpay"),
    ("SG.PAYNOW", "paynow"),
    ("ID.CO.QRIS", "qris"),
)


def scheme_of_guid(guid: str) -> str | None:
    """Return the name of the scheme that owns ``guid``, or ``None`` when it is unknown.

    The NAPAS GUID answers ``"napas"``: a payload is VietQR only when it sits in tag 38.

    PromptPay's GUIDs share the prefix A000000677 (010111 credit transfer, 010112 bill
    payment, and further variants), so owners match by prefix. MoMo has no registered
    application id; its own templates are recognised by a reverse-domain GUID naming it.
    """
    upper = guid.upper()
    for prefix, owner in _GUID_OWNERS:
        if upper.startswith(prefix):
            return owner
    if "MOMO" in upper:
        return "momo"
    return None
