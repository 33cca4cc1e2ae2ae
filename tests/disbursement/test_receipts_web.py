"""The public receipt page ``/r/{code}`` and the proof data its script checks.

The browser recomputes the proof (tests/browser/test_receipt.py); here the same data is checked
with the ledger's Python verifier, so that both agree on what the page serves.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from disbursement.receipts_web import checkpoint_root
from payments.ledger import merkle, tree
from tests.disbursement.test_payouts import _approved, _items, _rows


@pytest.fixture
def paid(
    client: FlaskClient,
    app: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
) -> list[Any]:
    """Pay a batch of 12 (3 of them fail at the bank) and return its paid items."""
    batch_id = _approved(client, officer, approver, run_jobs, _rows(people, 12))
    run_jobs()
    items = [i for i in _items(app, batch_id) if i.status == "paid"]
    assert len(items) == 9
    return items


def _text(resp: Any) -> str:
    return html.unescape(resp.get_data(as_text=True))


def test_the_receipt_page_shows_the_payment_and_nothing_else_about_the_person(
    client: FlaskClient, paid: list[Any], people: list[dict[str, Any]]
):
    item = paid[2]
    code = item.receipt_code
    resp = client.get(f"/r/{code[:4]}-{code[4:8]}-{code[8:].lower()}")
    assert resp.status_code == 200
    page = _text(resp)
    assert f"{code[:4]}-{code[4:8]}-{code[8:]}" in page
    assert "Trợ cấp xã hội hằng tháng" in page
    assert "2026-11" in page
    assert "500.000\u00a0₫" in page
    assert item.bank_txn_id in page
    assert "— chopay" in page or "\u2014 " in page  # the signed checkpoint, printed whole
    assert re.search(r"<code>[^<+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+</code>", page)  # a verifier key
    # Nothing else about the person: the account is masked, no name, no national id.
    person = people[2]
    assert person["account_number"] not in page
    assert person["account_number"][-3:] in page
    assert person["full_name"] not in page
    assert person["national_id"] not in page
    # The page runs only its nonce'd scripts, the proof check among them.
    policy = resp.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'nonce="{nonce.group(1)}" src="/static/receipt.js"' in page
    assert "<script>" not in page


def test_the_proof_data_verifies_with_the_python_verifier(client: FlaskClient, paid: list[Any]):
    for item in paid:
        page = _text(client.get(f"/r/{item.receipt_code}"))
        note = re.search(r'<pre class="note"[^>]*>(.*?)</pre>', page, re.S)
        assert note is not None
        size, root = checkpoint_root(note.group(1))
        data = client.get(f"/r/{item.receipt_code}/proof.json").get_json()
        assert data["tree_size"] == size
        leaf = data["leaf"].encode("utf-8")
        proof = [bytes.fromhex(h) for h in data["proof"]]
        assert merkle.verify_inclusion(data["index"], size, merkle.leaf_hash(leaf), proof, root)
        assert f'"receipt":"{item.receipt_code}"' in data["leaf"]
        # One altered sibling, or another entry's bytes, no longer lead to the root.
        if proof:
            bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert not merkle.verify_inclusion(data["index"], size, merkle.leaf_hash(leaf), bad, root)
        other = leaf.replace(item.receipt_code.encode(), b"ABCDEFGHJKLM")
        assert not merkle.verify_inclusion(data["index"], size, merkle.leaf_hash(other), proof, root)


def test_an_unknown_or_mistyped_code_gets_the_friendly_404_page(client: FlaskClient, paid: list[Any]):
    for code in ("ABCD-EFGH-JKLM", "abcd efgh jkl0", "not-a-receipt"):
        resp = client.get(f"/r/{code}")
        assert resp.status_code == 404, code
        page = _text(resp)
        assert "Không tìm thấy biên nhận" in page
        assert "ABCD-EFGH-JKLM" in page  # what a code looks like
        assert resp.mimetype == "text/html"
    answer = client.get("/r/ABCD-EFGH-JKLM/proof.json")
    assert answer.status_code == 404
    assert answer.get_json() == {"code": "receipt_not_found"}


def test_a_payment_no_checkpoint_covers_yet_says_so_and_serves_no_proof(
    client: FlaskClient, paid: list[Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(tree, "latest_checkpoint", lambda _session: None)  # as before the first one
    page = _text(client.get(f"/r/{paid[0].receipt_code}"))
    assert "Chưa kiểm tra được" in page
    assert 'id="checkpoint-note"' not in page  # nothing for the script to check against
    data = client.get(f"/r/{paid[0].receipt_code}/proof.json").get_json()
    assert (data["leaf"], data["proof"], data["tree_size"]) == (None, None, None)
    assert data["amount"] == paid[0].amount


def test_the_receipt_page_speaks_english_on_request(client: FlaskClient, paid: list[Any]):
    token = re.search(r'name="csrf_token" value="([^"]+)"', _text(client.get(f"/r/{paid[0].receipt_code}")))
    assert token is not None
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token.group(1)})
    page = _text(client.get(f"/r/{paid[0].receipt_code}"))
    assert "The payment" in page
    assert "Is it in the signed ledger?" in page


def test_the_receipt_page_is_rate_limited_per_client(make_app: Callable[..., Flask], settings: Any):
    limited = make_app(public_rate_limit="2/minute").test_client()
    answers = [limited.get("/r/ABCD-EFGH-JKLM").status_code for _ in range(3)]
    assert answers == [404, 404, 429]
    assert limited.get("/r/ABCD-EFGH-JKLM/proof.json").status_code == 404  # counted on its own
