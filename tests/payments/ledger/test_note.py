"""C2SP signed notes, keys and tlog checkpoints."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("example.com/foo+530d90+{key}", "verifier key: key id '530d90' must be 8 hex digits"),
        ("example.com/foo+530d903z+{key}", "verifier key: key id '530d903z' is not hex"),
        ("example.com/foo+530d903a+{key}!", "verifier key key is not valid base64"),
        # The real key with a stray character inside, which a lenient decoder would skip.
        (
            "example.com/foo+530d903a+Aeky!eRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "verifier key key is not valid base64",
        ),
        (
            "example.com/foo+530d903a+AQ==",
            "verifier key: only Ed25519 keys (type 0x01, 32 bytes) are supported",
        ),
        # Fields are checked in reading order: the name first.
        ("bad name+zz+!!", "invalid key name 'bad name': it must be non-empty, without spaces or '+'"),
        ("example.com/foo+zz+!!", "verifier key: key id 'zz' must be 8 hex digits"),
    ],
)
def test_verifier_key_faults_are_named(vkey: str, message: str) -> None:
    key = C2SP_VKEY.split("+", 2)[2]
    with pytest.raises(NoteError) as caught:
        Verifier.from_vkey(vkey.format(key=key))
    assert str(caught.value) == message


def test_signer_key_faults_are_named() -> None:
    rest = GO_SKEY.split("+", 4)[4]
    with pytest.raises(NoteError) as caught:
        Signer.from_skey("PRIVATE+KEY+PeterNeumann+c74f20a3")
    assert str(caught.value) == "signer key must look like PRIVATE+KEY+<name>+<hex key id>+<base64 key>"
    with pytest.raises(NoteError) as caught:
        Signer.from_skey(f"PRIVATE+KEY+PeterNeumann+c74f20+{rest}")
    assert str(caught.value) == "signer key: key id 'c74f20' must be 8 hex digits"
    with pytest.raises(NoteError) as caught:
        Signer.from_skey(f"PRIVATE+KEY+PeterNeumann+c74f20a3+{rest[:-1]}")
    assert str(caught.value) == "signer key key is not valid base64"


def test_a_base64_key_containing_plus_round_trips() -> None:
    signer = Signer("log.example", Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32))
    assert "+" in signer.vkey.split("+", 2)[2]
    assert Verifier.from_vkey(signer.vkey) == signer.verifier
    assert Signer.from_skey(signer.to_skey()).vkey == signer.vkey


def test_verifiers_are_checked_values() -> None:
    verifier = Verifier.from_vkey(C2SP_VKEY)
    with pytest.raises(NoteError, match="^invalid key name 'bad name'"):
        Verifier("bad name", verifier.public_key)
    with pytest.raises(NoteError, match="^Ed25519 public key is 31 bytes, not 32$"):
        Verifier("example.com/foo", verifier.public_key[:31])
    assert repr(verifier) == f"Verifier({C2SP_VKEY!r})"
    same = Verifier.from_vkey(C2SP_VKEY)
    assert hash(same) == hash(verifier)
    assert {verifier, same} == {verifier}
    assert verifier != C2SP_VKEY


def test_verify_is_true_only_for_a_64_byte_signature_of_the_message() -> None:
    signer = Signer.generate("log.example")
    signature = signer.sign(b"hello\n")
    assert signer.verifier.verify(b"hello\n", signature) is True
    assert signer.verifier.verify(b"hello!\n", signature) is False
    assert signer.verifier.verify(b"hello\n", signature[:63]) is False
    assert signer.verifier.verify(b"hello\n", signature + b"\x00") is False


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
    witness = Signer.generate("witness.example")
    cosigned = sign_note("hello\n", [signer, signer, witness])
    assert open_note(cosigned, [signer.verifier, witness.verifier])[1] == ["log.example", "witness.example"]


def test_signatures_by_unknown_keys_are_skipped_wherever_they_are() -> None:
    signer, stranger = Signer.generate("log.example"), Signer.generate("x.example")
    note = sign_note("hello\n", [stranger, signer])
    assert open_note(note, [signer.verifier]) == ("hello\n", ["log.example"])
    other = Signer.generate("y.example")
    with pytest.raises(NoteError) as caught:
        open_note(sign_note("hello\n", [stranger, other]), [signer.verifier])
    assert str(caught.value) == (
        "note has no signature by a trusted key; it is signed only by unknown keys: "
        f"x.example+{stranger.key_id.hex()}, y.example+{other.key_id.hex()}"
    )


def test_a_truncated_signature_by_a_trusted_key_rejects_the_note() -> None:
    signer = Signer.generate("log.example")
    note = sign_note("hello\n", [signer])
    line = note.split("\n")[-2]
    raw = base64.b64decode(line.split(" ")[-1])
    for cut in (raw[:-1], raw[:5]):
        forged = note.replace(line, f"\u2014 log.example {base64.b64encode(cut).decode()}")
        with pytest.raises(
            NoteError, match=f"^signature by trusted key log.example\\+{signer.key_id.hex()} does not"
        ):
            open_note(forged, [signer.verifier])
    forged = note.replace(line, f"\u2014 log.example {base64.b64encode(raw[:4]).decode()}")
    with pytest.raises(NoteError, match="^signature line 1 is too short to hold a key id and a signature$"):
        open_note(forged, [signer.verifier])


def test_signature_lines_are_numbered_from_one() -> None:
    signer = Signer.generate("log.example")
    note = sign_note("hello\n", [signer])
    with pytest.raises(NoteError) as caught:
        open_note(note + "- log.example AAAA\n", [signer.verifier])
    assert str(caught.value) == "signature line 2 does not start with an em dash and a space"


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
    with pytest.raises(NoteError, match="^note has 101 signatures; at most 100 are accepted$"):
        open_note(many, [signer.verifier])
    assert open_note(sign_note("x\n", [signer] * 100), [signer.verifier])[1] == ["log.example"]
    assert open_note(sign_note("x\n", [signer] * 16), [signer.verifier])[1] == ["log.example"]


def test_a_text_of_one_empty_line_round_trips() -> None:
    signer = Signer.generate("log.example")
    assert open_note(sign_note("\n", [signer]), [signer.verifier]) == ("\n", ["log.example"])


def test_lone_surrogates_are_refused() -> None:
    signer = Signer.generate("log.example")
    with pytest.raises(NoteError) as caught:
        sign_note("bad \ud800 text\n", [signer])
    assert str(caught.value) == "note text is not valid UTF-8 (lone surrogate)"
    with pytest.raises(NoteError) as caught:
        open_note("bad \udfff text\n\n\u2014 log.example QUFBQUFB\n", [signer.verifier])
    assert str(caught.value) == "note is not valid UTF-8 (lone surrogate)"
    with pytest.raises(NoteError) as caught:
        open_note("te\x07xt\n\n\u2014 log.example QUFBQUFB\n", [signer.verifier])
    assert str(caught.value) == "note contains control character U+0007"


def test_signing_checks_its_input() -> None:
    signer = Signer.generate("log.example")
    with pytest.raises(NoteError, match="newline"):
        sign_note("no newline", [signer])
    with pytest.raises(NoteError, match="control"):
        sign_note("bell\a\n", [signer])
    with pytest.raises(NoteError, match="at least one"):
        sign_note("x\n", [])
    with pytest.raises(NoteError, match="^a note needs at least one signer$"):
        sign_note("x\n", iter([]))
    note = sign_note("x\n", (s for s in [signer]))
    assert open_note(note, [signer.verifier]) == ("x\n", ["log.example"])
    with pytest.raises(NoteError) as caught:
        sign_note("bell\a\n", [signer])
    assert str(caught.value) == "note text contains control character U+0007"


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", "checkpoint origin line is empty"),
        ("o\n1\nnot*base64\n", "checkpoint root is not valid base64"),
        (
            "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\next\n\n",
            "checkpoint extension lines must not be empty",
        ),
    ],
)
def test_checkpoint_faults_are_named(text: str, message: str) -> None:
    with pytest.raises(NoteError) as caught:
        Checkpoint.parse(text)
    assert str(caught.value) == message


def test_checkpoints_are_immutable_values() -> None:
    checkpoint = Checkpoint("o", 1, EMPTY_ROOT, ("ext",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        checkpoint.size = 2  # type: ignore[misc]
    assert {checkpoint, Checkpoint("o", 1, EMPTY_ROOT, ("ext",))} == {checkpoint}


def test_checkpoint_fields_are_validated() -> None:
    for extensions in (("",), ("ok", "two\nlines")):
        with pytest.raises(NoteError) as caught:
            Checkpoint("o", 1, EMPTY_ROOT, extensions)
        assert str(caught.value) == "checkpoint extension lines must be non-empty single lines"
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
