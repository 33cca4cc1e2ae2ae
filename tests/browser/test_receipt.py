"""The receipt check in Chromium: a real receipt verifies in the browser, an altered proof does not.

A small batch is paid through the bank simulator; its receipt page recomputes the inclusion
proof with WebCrypto. The page's script is also run against proofs made by the ledger's Python
code, tampered and not, so the browser and the offline verifier are seen to agree.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from playwright.sync_api import expect

from payments.ledger import merkle, note
from tests.browser.conftest import Live, check_page
from tests.browser.payouts import approved_batch, wait

CODE = "TCBN"
SERIALS = range(301, 304)


def _paid_receipt(live: Live) -> str:
    """Pay three fake people through the simulator and return a sealed receipt code."""
    run = approved_batch(live, CODE, SERIALS)
    run.wait({"completed"})
    report = run.http.get(f"{run.url}/report.csv", headers=run.officer).get_data(as_text=True)
    code: str = next(csv.DictReader(io.StringIO(report)))["receipt_code"]
    wait(lambda: run.http.get(f"/v1/receipts/{code}").get_json()["sealed"], {True})
    return code


def _vectors() -> list[dict[str, Any]]:
    """Inclusion proofs from the Python code for trees of 1..17 leaves, and tampered copies."""
    out: list[dict[str, Any]] = []
    for size in range(1, 18):
        hashes = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(size)]
        root = merkle.root(hashes)
        for index in range(size):
            proof = merkle.inclusion_proof(index, hashes)
            assert merkle.verify_inclusion(index, size, hashes[index], proof, root)
            cases = [(index, size, hashes[index], proof, root)]
            cases.append((index, size, hashes[(index + 1) % size], proof, root))  # another leaf
            cases.append((index, size + 1, hashes[index], proof, root))  # another tree size
            cases.append(((index + 1) % size, size, hashes[index], proof, root))  # another position
            if proof:
                flipped = bytes([proof[-1][0] ^ 0x80]) + proof[-1][1:]
                cases.append((index, size, hashes[index], [*proof[:-1], flipped], root))
                cases.append((index, size, hashes[index], proof[:-1], root))  # one hash short
            cases.append((index, size, hashes[index], [*proof, root], root))  # one hash too many
            for i, n, leaf, p, r in cases:
                out.append(
                    {
                        "index": i,
                        "size": n,
                        "leaf": leaf.hex(),
                        "proof": [h.hex() for h in p],
                        "root": r.hex(),
                        "expected": merkle.verify_inclusion(i, n, leaf, p, r),
                    }
                )
    return out


AGREE = """async (vectors) => {
  const r = window.chopayReceipt;
  const out = [];
  for (const v of vectors) {
    const proof = v.proof.map(r.fromHex);
    out.push(await r.verifyInclusion(v.index, v.size, r.fromHex(v.leaf), proof, r.fromHex(v.root)));
  }
  return out;
}"""


SIGNED_BY = """async ([text, good, bad]) => {
  const r = window.chopayReceipt;
  const checkpoint = r.parseCheckpoint(text);
  return [await r.signedBy(checkpoint, good), await r.signedBy(checkpoint, bad)];
}"""


def _vkey(signer: note.Signer) -> str:
    return signer.vkey


def test_a_real_receipt_verifies_in_the_browser_and_an_altered_one_does_not(live, new_page, paying_bank):
    code = _paid_receipt(live)
    shown = f"{code[:4]}-{code[4:8]}-{code[8:]}"

    page = new_page()
    page.goto(f"/r/{shown.lower()}")
    result = page.locator("#proof-result")
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(result).to_contain_text("Đã xác minh")
    expect(page.locator("#signature-result")).to_contain_text("đã kiểm tra chữ ký")
    expect(page.locator("#computed-root")).to_have_text(page.locator("#checkpoint-root").inner_text())
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Biên nhận {shown}")
    expect(page.locator("#receipt-amount")).to_have_text("500.000\u00a0₫")
    check_page(page, "receipt")

    # The script agrees with the ledger's Python verifier on good and tampered proofs alike.
    vectors = _vectors()
    answers = page.evaluate(AGREE, vectors)
    assert answers == [v["expected"] for v in vectors]
    assert answers.count(False) > answers.count(True) > 0
    leaf_text = '{"v":1,"memo":"Chi trả — kỳ 2026-12"}'
    in_browser = page.evaluate(
        "async (t) => window.chopayReceipt.toHex(await window.chopayReceipt.leafHash(t))", leaf_text
    )
    assert in_browser == merkle.leaf_hash(leaf_text.encode("utf-8")).hex()

    # Verifier keys whose base64 holds "+" (most do) are read whole.
    signer = next(s for s in iter(lambda: note.Signer.generate("example.org/log"), None) if "+" in _vkey(s))
    other = note.Signer.generate("example.org/log")
    signed = note.sign_note("example.org/log\n3\nAAAA\n", [signer])
    checks = page.evaluate(SIGNED_BY, [signed, _vkey(signer), _vkey(other)])
    assert checks == [True, False]

    # One sibling hash altered in transit: the page says it does not verify.
    def alter(route: Any) -> None:
        answer = route.fetch()
        data = answer.json()
        assert data["proof"], "a tree of several entries gives a proof with siblings"
        first = data["proof"][0]
        data["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
        route.fulfill(response=answer, body=json.dumps(data), content_type="application/json")

    tampered = new_page()
    tampered.route("**/proof.json?*", alter)
    tampered.goto(f"/r/{code}")
    result = tampered.locator("#proof-result")
    expect(result).to_have_attribute("data-outcome", "bad")
    expect(result).to_contain_text("KHÔNG xác minh được")
    check_page(tampered, "receipt-tampered")

    # Another entry's bytes passed off as this receipt's: refused too.
    def swap(route: Any) -> None:
        answer = route.fetch()
        data = answer.json()
        data["leaf"] = data["leaf"].replace(code, "ABCDEFGHJKLM")
        route.fulfill(response=answer, body=json.dumps(data), content_type="application/json")

    swapped = new_page()
    swapped.route("**/proof.json?*", swap)
    swapped.goto(f"/r/{code}")
    expect(swapped.locator("#proof-result")).to_have_attribute("data-outcome", "bad")
    expect(swapped.locator("#proof-result")).to_contain_text("không phải của biên nhận này")


def test_an_unknown_receipt_gets_the_friendly_404_page(live, new_page):
    page = new_page()
    answer = page.goto("/r/ABCD-EFGH-JKLM")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Không tìm thấy biên nhận")
    check_page(page, "receipt-not-found")
