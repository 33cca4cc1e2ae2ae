"""``/r/{code}``: the public receipt check a beneficiary, or the commune officer helping them, opens.

The page shows what ``GET /v1/receipts/{code}`` shows of the payment (program, period, amount,
masked account, paid time, bank transaction id; nothing else about the person), the signed
checkpoint's text and the verifier keys. The proof itself is checked **in the browser**
(``chopay/static/receipt.js``, WebCrypto SHA-256): the script fetches
``/r/{code}/proof.json`` (the ledger entry's exact bytes and its inclusion proof), hashes the
leaf (RFC 9162: ``SHA-256(0x00 || leaf)``), folds the proof (``SHA-256(0x01 || l || r)``, the
algorithm of RFC 9162 section 2.1.3.2) and compares the result with the root written in the
checkpoint text the page printed, then checks the checkpoint's Ed25519 signature with the
verifier key where the browser supports it. So the server is not asked to vouch for itself:
whoever doubts the page can redo the same computation from the values it shows.

Both addresses need no account and are limited per client like the API's receipt
(``CHOPAY_PUBLIC_RATE_LIMIT``). An unknown or mistyped code gets a friendly 404 page that says
what a code looks like.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from chopay import db, ratelimit
from chopay.crypto import data_keys
from disbursement import domain, receipts
from disbursement.errors import InvalidInput, ReceiptNotFound
from payments.ledger import canonical, keys, tree

bp = Blueprint("receipts_web", __name__, template_folder="templates")


def _find(code: str) -> dict[str, Any] | None:
    try:
        return receipts.lookup(db.session(), data_keys(), code)
    except (InvalidInput, ReceiptNotFound):
        return None


def _missing(code: str) -> ResponseReturnValue:
    shown = domain.parse_receipt(code)
    return (
        render_template(
            "disbursement/receipt_missing.html",
            code=domain.format_receipt(shown) if shown else code[:40],
        ),
        404,
    )


def checkpoint_root(note: str) -> tuple[int, bytes]:
    """Return the tree size and root hash written in a checkpoint note's text (lines 2 and 3)."""
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2], validate=True)


@bp.get("/r/<code>")
@ratelimit.public
def receipt(code: str) -> ResponseReturnValue:
    """Show a receipt and check its ledger proof in the browser."""
    found = _find(code)
    if found is None:
        return _missing(code)
    settings = current_app.config["CHOPAY"]
    return render_template(
        "disbursement/receipt.html",
        receipt=found,
        code=domain.parse_receipt(code),
        verifier_keys=[v.vkey for v in keys.trusted_verifiers(settings)],
    )


@bp.get("/r/<code>/proof.json")
@ratelimit.public
def proof(code: str) -> ResponseReturnValue:
    """Answer what the browser needs to check the receipt: the leaf's exact text and its proof.

    ``leaf`` is the canonical JSON that the log hashed, as text (so that the browser hashes the
    very same bytes); ``proof`` the sibling hashes in hex, bottom up; ``null`` values mean the
    payment is not covered by a signed checkpoint yet.
    """
    found = _find(code)
    if found is None:
        return jsonify({"code": "receipt_not_found"}), 404
    ledger = found["ledger"] or {}
    inclusion = ledger.get("proof")
    # The page asks for the proof at the size of the checkpoint it printed: a newer checkpoint
    # signed in between must not make a genuine receipt look altered.
    size = request.args.get("size", type=int)
    latest = (found["checkpoint"] or {}).get("size")
    index = ledger.get("index")
    if inclusion is not None and size is not None and latest is not None and index is not None:
        if not index < size <= latest:
            return jsonify({"code": "size_not_signed"}), 404
        if size != latest:
            inclusion = tree.inclusion(db.session(), index, size)
    body: dict[str, Any] = {
        "receipt_code": found["receipt_code"],
        "amount": found["amount"],
        "index": ledger.get("index"),
        "tree_size": None,
        "leaf": None,
        "proof": None,
    }
    if inclusion is not None:
        body |= {
            "tree_size": inclusion["tree_size"],
            "leaf": canonical.leaf_bytes(inclusion["leaf"]).decode("utf-8"),
            "proof": [h.hex() for h in inclusion["proof"]],
        }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
