"""C2SP signed notes, keys and tlog checkpoints."""

from __future__ import annotations

import base64

import pytest

from payments.ledger.merkle import EMPTY_ROOT
from payments.ledger.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

# The example of https://c2sp.org/signed-note.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_TEXT = "This is an example message.\n"
C2SP_SIG = "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
C2SP_NOTE = f"{C2SP_TEXT}\n\u2014 example.com/foo {C2SP_SIG}\n"

# The example key pair and note of Go's golang.org/x/mod/sumdb/note documentation.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_c2sp_conformance_vector() -> None:
    verifier = Verifier.from_vkey(C2SP_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey == C2SP_VKEY
    assert open_note(C2SP_NOTE, [verifier]) == (C2SP_TEXT, ["example.com/foo"])
    assert open_note(C2SP_NOTE.encode(), [verifier]) == (C2SP_TEXT, ["example.com/foo"])


def test_c2sp_vector_rejects_any_other_text() -> None:
    verifier = Verifier.from_vkey(C2SP_VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(C2SP_NOTE.replace("example message", "example massage"), [verifier])


def test_go_sumdb_key_pair_and_note() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.vkey == GO_VKEY
    assert signer.to_skey() == GO_SKEY
    text, names = open_note(GO_NOTE, [Verifier.from_vkey(GO_VKEY)])
    assert names == ["PeterNeumann"]
    # Ed25519 is deterministic, so signing the same text reproduces Go's note byte for byte.
    assert sign_note(text, [signer]) == GO_NOTE


def test_generated_keys_round_trip() -> None:
    signer = Signer.generate("chopay.example/ledger")
    again = Signer.from_skey(signer.to_skey())
    assert again.vkey == signer.vkey
    assert Verifier.from_vkey(signer.vkey) == signer.verifier
    assert signer.key_id == key_id(signer.name, signer.verifier.public_key)
    assert signer.to_skey().startswith(f"PRIVATE+KEY+chopay.example/ledger+{signer.key_id.hex()}+")
    assert "PRIVATE" not in repr(signer)


def test_key_strings_are_checked() -> None:
    name, kid, key = C2SP_VKEY.split("+", 2)
    with pytest.raises(NoteError, match="does not match"):
        Verifier.from_vkey(f"{name}+530d903b+{key}")
    with pytest.raises(NoteError, match="does not match"):
        Verifier.from_vkey(f"example.com/bar+{kid}+{key}")
    with pytest.raises(NoteError, match="look like"):
        Verifier.from_vkey("example.com/foo")
    with pytest.raises(NoteError, match="8 hex"):
        Verifier.from_vkey(f"{name}+530d90+{key}")
    with pytest.raises(NoteError, match="base64"):
        Verifier.from_vkey(f"{name}+{kid}+not*base64")
    with pytest.raises(NoteError, match="Ed25519"):
        Verifier.from_vkey(f"{name}+{kid}+" + base64.b64encode(b"\x02" + bytes(32)).decode())
    with pytest.raises(NoteError, match="key name"):
        Verifier.from_vkey(f"bad name+{kid}+{key}")
    skey_name, skey_rest = GO_SKEY[len("PRIVATE+KEY+") :].split("+", 1)
    with pytest.raises(NoteError, match="does not match"):
        Signer.from_skey(f"PRIVATE+KEY+{skey_name}+00000000+{skey_rest.split('+', 1)[1]}")
    with pytest.raises(NoteError, match="PRIVATE"):
        Signer.from_skey(GO_VKEY)


def test_key_names_follow_the_spec() -> None:
    for bad in ("", "a b", "a+b", "tab\there", "nbsp\u00a0here"):
        with pytest.raises(NoteError, match="key name"):
            Signer.generate(bad)


def test_rotation_accepts_any_trusted_key_and_ignores_unknown_ones() -> None:
    old, new = Signer.generate("log.example"), Signer.generate("log.example")
    stranger = Signer.generate("x.example")
    note = sign_note("hello\n", [new, stranger])
    assert open_note(note, [old.verifier, new.verifier]) == ("hello\n", ["log.example"])
    cosigned = sign_note("hello\n", [old, new])
    assert open_note(cosigned, [old.verifier, new.verifier])[1] == ["log.example", "log.example"]
    with pytest.raises(NoteError, match=f"no signature by a trusted key.*log.example\\+{new.key_id.hex()}"):
        open_note(note, [old.verifier])


def test_a_known_key_with_a_bad_signature_rejects_the_note() -> None:
    signer = Signer.generate("log.example")
    note = sign_note("hello\n", [signer])
    line = note.split("\n")[-2]
    raw = bytearray(base64.b64decode(line.split(" ")[-1]))
    raw[10] ^= 1
    forged = note.replace(line, f"\u2014 log.example {base64.b64encode(bytes(raw)).decode()}")
    with pytest.raises(NoteError, match=f"log.example\\+{signer.key_id.hex()} does not verify"):
        open_note(forged, [signer.verifier])


def test_duplicate_signatures_are_counted_once() -> None:
    signer = Signer.generate("log.example")
    note = sign_note("hello\n", [signer])
    doubled = note + note.split("\n\n")[1]
    assert open_note(doubled, [signer.verifier])[1] == ["log.example"]


def test_texts_with_blank_lines_split_at_the_last_one() -> None:
    signer = Signer.generate("log.example")
    text = "first\n\nsecond\n\n"
    assert open_note(sign_note(text, [signer]), [signer.verifier])[0] == text


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("no blank line\n\u2014 a AAAA\n", "no blank line"),
        ("text\n\n", "empty"),
        ("text\n\n\u2014 a QUFBQUFB", "does not end"),
        ("text\n\n- a QUFBQUFB\n", "em dash"),
        ("text\n\n\u2014 a\n", "key name"),
        ("text\n\n\u2014 a b c\n", "base64"),
        ("text\n\n\u2014 a QUFB\n", "too short"),
        ("te\tx\n\n\u2014 a QUFBQUFB\n", "control character"),
        (b"text\xff\n\n\xe2\x80\x94 a QUFBQUFB\n", "UTF-8"),
    ],
)
def test_malformed_notes(note: str | bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        open_note(note, [Verifier.from_vkey(C2SP_VKEY)])


def test_too_many_signatures() -> None:
    signer = Signer.generate("log.example")
    many = sign_note("x\n", [signer] * 101)
    with pytest.raises(NoteError, match="at most 100"):
        open_note(many, [signer.verifier])
    assert open_note(sign_note("x\n", [signer] * 16), [signer.verifier])[1] == ["log.example"]


def test_signing_checks_its_input() -> None:
    signer = Signer.generate("log.example")
    with pytest.raises(NoteError, match="newline"):
        sign_note("no newline", [signer])
    with pytest.raises(NoteError, match="control"):
        sign_note("bell\a\n", [signer])
    with pytest.raises(NoteError, match="at least one"):
        sign_note("x\n", [])


def test_ambiguous_trusted_keys_are_refused() -> None:
    a = Verifier.from_vkey(C2SP_VKEY)
    impostor = Verifier.__new__(Verifier)
    impostor.name, impostor.public_key, impostor.key_id = a.name, bytes(32), a.key_id
    with pytest.raises(NoteError, match="share name"):
        open_note(C2SP_NOTE, [a, impostor])


# --- checkpoints ------------------------------------------------------------------------------

SPEC_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_checkpoint_body_from_the_spec() -> None:
    checkpoint = Checkpoint.parse(SPEC_CHECKPOINT)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert base64.b64encode(checkpoint.root).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SPEC_CHECKPOINT


def test_checkpoint_extensions_round_trip() -> None:
    checkpoint = Checkpoint("o.example/log", 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o\n1\n", "origin, size and root"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode(), "newline"),
        ("\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", "origin"),
        ("o\n01\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeros"),
        ("o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("o\n\u0661\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "32 bytes"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n", "extension"),
    ],
)
def test_malformed_checkpoints(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(text)


def test_checkpoint_fields_are_validated() -> None:
    with pytest.raises(NoteError, match="5 bytes, not 32"):
        Checkpoint("o", 1, b"short")
    with pytest.raises(NoteError, match="non-negative"):
        Checkpoint("o", -1, EMPTY_ROOT)
    with pytest.raises(NoteError, match="single line"):
        Checkpoint("o\nx", 1, EMPTY_ROOT)


def test_signed_checkpoints_open_with_origin_check() -> None:
    signer = Signer.generate("log.example")
    checkpoint = Checkpoint("log.example", 42, bytes(range(32)))
    note = sign_checkpoint(checkpoint, [signer])
    assert note.startswith(checkpoint.body() + "\n\u2014 log.example ")
    assert open_checkpoint(note, [signer.verifier]) == (checkpoint, ["log.example"])
    assert open_checkpoint(note, [signer.verifier], origin="log.example")[0] == checkpoint
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, [signer.verifier], origin="other.example")
