// The receipt page (/r/{code}): check the payment's inclusion proof in this browser.
//
// Everything is computed here with WebCrypto, from the leaf bytes and sibling hashes that
// /r/{code}/proof.json answers and the signed checkpoint printed on the page:
//   leaf hash  = SHA-256(0x00 || leaf)                       (RFC 9162 section 2.1.1)
//   node hash  = SHA-256(0x01 || left || right)
//   the proof is folded by the verification algorithm of RFC 9162 section 2.1.3.2, and the
//   result must equal the root written in the checkpoint (its third line, base64).
// The checkpoint's Ed25519 signature (C2SP signed note) is checked with the verifier keys
// shown on the page where the browser supports Ed25519 in WebCrypto.
"use strict";

const chopayReceipt = (() => {
  const encoder = new TextEncoder();

  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };

  const fromHex = (text) => {
    if (typeof text !== "string" || !/^(?:[0-9a-f]{2})*$/i.test(text)) throw new Error("not hex");
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
    return out;
  };
  const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  const leafHash = (leafText) => sha256(concat(new Uint8Array([0]), encoder.encode(leafText)));
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

  // RFC 9162 section 2.1.3.2: the root that `proof` leads to from leaf `index` of a tree of
  // `size` leaves, or null when the proof cannot be one for that position (wrong length).
  async function rootFromInclusion(index, size, leaf, proof) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
    if (leaf.length !== 32 || proof.some((p) => p.length !== 32)) return null;
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  async function verifyInclusion(index, size, leaf, proof, root) {
    const found = await rootFromInclusion(index, size, leaf, proof);
    return found !== null && equal(found, root);
  }

  // A C2SP checkpoint: origin, size, base64 root, then optional lines; a blank line; signatures.
  function parseCheckpoint(note) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new Error("no signature block");
    const text = note.slice(0, split + 1);
    const lines = text.split("\n");
    if (!/^[0-9]{1,19}$/.test(lines[1] || "")) throw new Error("bad size");
    const signatures = note
      .slice(split + 2)
      .split("\n")
      .filter((line) => line.startsWith("\u2014 "))
      .map((line) => {
        const [name, blob] = line.slice(2).split(" ");
        return { name, blob: fromBase64(blob) };
      });
    return { text, origin: lines[0], size: Number(lines[1]), root: fromBase64(lines[2] || ""), signatures };
  }

  // "name+hex key id+base64(0x01 || Ed25519 public key)" -> whether it signed the note.
  // The base64 key may itself hold "+": split at the first two only.
  async function signedBy(checkpoint, vkey) {
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 1 || second < 0) return false;
    const name = vkey.slice(0, first);
    const keyB64 = vkey.slice(second + 1);
    const raw = fromBase64(keyB64);
    if (raw[0] !== 1 || raw.length !== 33) return false;
    const id = (await sha256(concat(encoder.encode(name), new Uint8Array([0x0a]), raw))).slice(0, 4);
    const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    for (const sig of checkpoint.signatures) {
      if (sig.name !== name || sig.blob.length !== 68 || !equal(sig.blob.slice(0, 4), id)) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, sig.blob.slice(4), encoder.encode(checkpoint.text))) return true;
    }
    return false;
  }

  async function ed25519Supported() {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"]);
      return true;
    } catch (error) {
      return false;
    }
  }

  function say(el, text, kind) {
    el.textContent = text;
    el.className = `status ${kind}`;
    el.dataset.outcome = kind;
  }

  async function check(section) {
    const result = document.getElementById("proof-result");
    const signature = document.getElementById("signature-result");
    const noteEl = document.getElementById("checkpoint-note");
    if (!result || !noteEl || !signature) return;
    const msg = section.dataset;
    say(result, msg.msgChecking, "warn");
    let verdict = "bad";
    try {
      const answer = await fetch(msg.proof, { headers: { Accept: "application/json" }, credentials: "omit" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const data = await answer.json();
      if (data.leaf === null) {
        say(result, msg.msgUnsealed, "warn");
        return;
      }
      const checkpoint = parseCheckpoint(noteEl.textContent);
      document.getElementById("checkpoint-root").textContent = toHex(checkpoint.root);
      // The entry must be this receipt's payment, not any entry of the log.
      const leaf = JSON.parse(data.leaf);
      const amounts = (leaf.postings || []).map((p) => p.amount);
      const own = leaf.metadata && leaf.metadata.receipt === msg.receipt && leaf.index === data.index &&
        amounts.includes(Number(msg.amount));
      const hashed = await leafHash(data.leaf);
      document.getElementById("leaf-hash").textContent = toHex(hashed);
      const proof = data.proof.map(fromHex);
      const root = await rootFromInclusion(data.index, checkpoint.size, hashed, proof);
      document.getElementById("computed-root").textContent = root ? toHex(root) : "—";
      if (!own) {
        say(result, msg.msgMismatch, "bad");
      } else if (root !== null && equal(root, checkpoint.root) && data.tree_size === checkpoint.size) {
        say(result, msg.msgOk, "ok");
        verdict = "ok";
      } else {
        say(result, msg.msgBad, "bad");
      }
      const keys = [...document.querySelectorAll("#verifier-keys code")].map((c) => c.textContent.trim());
      if (!(await ed25519Supported())) {
        signature.textContent = msg.msgSigSkip;
      } else {
        let by = null;
        for (const vkey of keys) {
          if (await signedBy(checkpoint, vkey)) {
            by = vkey.split("+")[0];
            break;
          }
        }
        signature.textContent = by ? msg.msgSigOk.replace("{key}", by) : msg.msgSigBad;
        signature.dataset.outcome = by ? "ok" : "bad";
        if (!by && verdict === "ok") say(result, msg.msgBad, "bad");
      }
    } catch (error) {
      say(result, msg.msgError, "bad");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("proof-check");
    if (section && document.getElementById("checkpoint-note")) check(section);
  });

  return { leafHash, nodeHash, rootFromInclusion, verifyInclusion, parseCheckpoint, signedBy, fromHex, toHex };
})();
window.chopayReceipt = chopayReceipt;
