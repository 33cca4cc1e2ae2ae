"""Sign and verify bank notifications in the three formats chopay accepts.

Pure: the standard library plus the official ``payos`` SDK (and what it needs). One module
per format (:mod:`.chopay`, :mod:`.sepay`, :mod:`.payos`) and what they share (:mod:`.fields`);
import everything from here. The bank
simulator signs with these functions and the notification intake verifies with them, so
both ends share one implementation of each format.

``chopay`` (``POST /v1/bank-notifications``)
    The body is :class:`ChopayNotification` as JSON. Headers ``X-Chopay-Connector: NAME`` and
    ``X-Chopay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``, as Stripe
    signs its webhooks. The header may carry several ``v1`` entries (a sender rotating its
    secret signs with both); the receiver may hold several live secrets per connector.
    The timestamp must be within :data:`TOLERANCE` (300 s) of the receiver's clock, either
    way; the signature is checked first, so ``signature_expired`` is only ever said of a
    notification that was genuinely signed.

        >>> body = b'{"amount": 50000}'
        >>> header = sign_chopay(body, "whsec_demo", timestamp=1_700_000_000)
        >>> verify_chopay(body, header, ["whsec_old", "whsec_demo"], now=1_700_000_100)
        1700000000

``sepay`` (``POST /v1/bank-notifications/sepay/{connector}``)
    SePay's webhook JSON (:class:`SepayNotification`), authenticated by
    ``Authorization: Apikey <key>``. The receiver answers ``{"success": true}`` with 200 or
    201; SePay retries anything else. The dedup key is SePay's ``id``.

``payos`` (``POST /v1/bank-notifications/payos/{connector}``)
    payOS's webhook ``{code, desc, success, data, signature}`` where ``signature`` is the
    payOS checksum of ``data``: HMAC-SHA256 with the checksum key over the ``key=value&...``
    string of ``data``'s keys in sorted order. The body is validated with the SDK's own
    ``Webhook`` model and the checksum computed by the SDK's own ``CryptoProvider``, exactly
    as ``PayOS.webhooks.verify`` does; the comparison here is constant-time and accepts any
    of several live keys. The dedup key is ``data.reference``.

Every failure raises :class:`WebhookError`, whose ``code`` is one of :data:`CODES`:

=======================  ==============================================================
``signature_missing``    no signature header / ``Authorization`` / ``signature`` field
``signature_malformed``  the header is not in the format's syntax
``signature_invalid``    no live secret produces the signature (or the API key is wrong)
``signature_expired``    genuinely signed, but outside the tolerance window
``payload_malformed``    the body is not the format's JSON (field named in the message)
=======================  ==============================================================

A receiver answers the ``signature_*`` codes with 401 and ``payload_malformed`` with 400.
"""

from __future__ import annotations

from payments.rails.webhooks.chopay import (
    CONNECTOR_HEADER,
    SIGNATURE_HEADER,
    TOLERANCE,
    ChopayNotification,
    SignatureHeader,
    chopay_headers,
    chopay_signature,
    parse_chopay,
    parse_chopay_signature,
    sign_chopay,
    signed_payload,
    verify_chopay,
)
from payments.rails.webhooks.fields import (
    CODES,
    MAX_AMOUNT,
    VIETNAM,
    WebhookError,
    format_vietnam_time,
    parse_vietnam_time,
)
from payments.rails.webhooks.payos import (
    PayosNotification,
    payos_checksum,
    sign_payos,
    verify_payos,
)
from payments.rails.webhooks.sepay import (
    SepayNotification,
    parse_sepay,
    sepay_headers,
    verify_sepay,
)

__all__ = [
    "CODES",
    "CONNECTOR_HEADER",
    "ChopayNotification",
    "MAX_AMOUNT",
    "PayosNotification",
    "SIGNATURE_HEADER",
    "SepayNotification",
    "SignatureHeader",
    "TOLERANCE",
    "VIETNAM",
    "WebhookError",
    "chopay_headers",
    "chopay_signature",
    "format_vietnam_time",
    "parse_chopay",
    "parse_chopay_signature",
    "parse_sepay",
    "parse_vietnam_time",
    "payos_checksum",
    "sepay_headers",
    "sign_chopay",
    "sign_payos",
    "signed_payload",
    "verify_chopay",
    "verify_payos",
    "verify_sepay",
]
