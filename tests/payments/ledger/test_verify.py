"""Offline export verification: valid exports pass, every kind of tampering names its entry."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from payments.ledger import verify
from payments.ledger.canonical import leaf_bytes
from payments.ledger.export import checkpoint_line, entry_line
from payments.ledger.merkle import CompactRange, leaf_hash, root
from payments.ledger.note import Checkpoint, Signer, sign_checkpoint
from payments.ledger.verify import VerifyResult, main, verify_export

from .exports import ORIGIN, Leaf, checkpoint_note, export_lines, make_leaves

REPO = Path(__file__).resolve().parents[3]


def entry_positions(lines: Sequence[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith('{"type":"entry"')]


def leaf_at(lines: Sequence[str], index: int) -> Leaf:
    leaf: Leaf = json.loads(lines[entry_positions(lines)[index]])["leaf"]
    return leaf


def edit(lines: Sequence[str], index: int, change: Callable[[Leaf], None]) -> list[str]:
    """Rewrite entry ``index`` canonically after ``change``; the chain after it is left alone."""
    out = list(lines)
    pos = entry_positions(lines)[index]
    leaf = json.loads(out[pos])["leaf"]
    change(leaf)
    out[pos] = entry_line(leaf["index"], leaf)
    return out


def renumber(lines: Sequence[str], start: int, delta: int) -> list[str]:
    """Shift the indexes of every entry at or after line ``start`` by ``delta``."""
    out = list(lines)
    for pos in entry_positions(out):
        if pos >= start:
            leaf = json.loads(out[pos])["leaf"]
            leaf["index"] += delta
            out[pos] = entry_line(leaf["index"], leaf)
    return out


def chained(leaves: Sequence[Leaf], start: int) -> list[Leaf]:
    """Recompute every ``prev`` from ``start`` on, as a careful forger would."""
    out = [dict(leaf) for leaf in leaves]
    for i in range(max(start, 1), len(out)):
        out[i]["prev"] = leaf_hash(leaf_bytes(out[i - 1])).hex()
    return out


def check(result: VerifyResult, index: int, *words: str) -> None:
    assert result.ok is False, result
    assert result.first_bad_index == index, result
    # Nothing verified before the problem: no root, size 0, no checkpoint.
    if result.root is None:
        assert (result.size, result.checkpoints_verified) == (0, 0), result
    else:
        assert result.size <= index, result
        assert result.checkpoints_verified > 0, result
    for word in words:
        assert word in (result.problem or ""), result


@pytest.fixture
def run(log_signer: Signer, write_lines: Callable[[Sequence[str]], Path]) -> Callable[..., VerifyResult]:
    """Verify lines both from memory and from a file, insist both agree, and return the result."""

    def go(lines: Sequence[str], *, trusted: str | None = None, **kwargs: Any) -> VerifyResult:
        kwargs.setdefault("workers", 1)
        from_file = verify_export(write_lines(lines), [log_signer.verifier], trusted, **kwargs)
        from_lines = verify_export(lines, [log_signer.verifier], trusted, **kwargs)
        assert from_file == from_lines
        return from_file

    return go


# --- valid exports ----------------------------------------------------------------------------


def test_a_valid_export_verifies(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf]
) -> None:
    result = run(export40)
    assert result == VerifyResult(True, 40, root([leaf_hash(leaf_bytes(x)) for x in leaves40]), 6)


def test_fast_path_and_diagnosis_agree_on_valid_exports(log_signer: Signer) -> None:
    for n in (1, 2, 3, 8, 17, 64):
        leaves = make_leaves(n)
        lines = export_lines(leaves, [log_signer], every=3)
        raw = [line.rstrip("\n").encode() for line in lines]
        for size in sorted({None, 0, 1, n // 2, n}, key=lambda x: -1 if x is None else x):
            note = None if size is None else checkpoint_note(leaves, size, [log_signer])
            trusted = None if note is None else Checkpoint.parse(note.split("\n\n")[0] + "\n")
            fast = verify_export(lines, [log_signer.verifier], note)
            slow = verify._diagnose(raw, [log_signer.verifier], trusted, None)
            assert fast == slow
            assert fast.ok
            assert fast.size == n


def test_valid_exports_never_need_the_diagnosing_pass(
    export40: list[str],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> VerifyResult:
        raise AssertionError("the fast path gave up on a valid export")

    monkeypatch.setattr(verify, "_diagnose", refuse)
    assert verify_export(export40, [log_signer.verifier]).ok
    assert verify_export(write_lines(export40), [log_signer.verifier]).ok


def test_writer_layout_takes_the_fast_path(leaves40: list[Leaf]) -> None:
    plain = [leaf for leaf in leaves40 if leaf["index"] % 7 != 3 and leaf["index"] % 13 != 5]
    for leaf in plain:
        line = entry_line(leaf["index"], leaf).rstrip("\n").encode()
        match = verify._FAST_ENTRY.fullmatch(line)
        assert match is not None, line
        assert match.group(2) == leaf_bytes(leaf)


def test_pool_of_processes_gives_the_same_result(
    log_signer: Signer, write_lines: Callable[[Sequence[str]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = make_leaves(300)
    lines = export_lines(leaves, [log_signer], every=13)
    path = write_lines(lines)
    monkeypatch.setattr(verify, "_POOL_MIN_BYTES", 0)
    monkeypatch.setattr(verify, "_CHUNK_BYTES", 4096)
    assert len(verify._ranges(str(path), 4096)) > 10
    trusted = checkpoint_note(leaves, 150, [log_signer])
    pooled = verify_export(path, [log_signer.verifier], trusted, workers=2)
    single = verify_export(path, [log_signer.verifier], trusted, workers=1)
    assert pooled == single
    assert pooled.ok
    assert pooled.size == 300
    bad = edit(lines, 200, lambda leaf: leaf.update(memo="edited"))
    assert verify_export(write_lines(bad), [log_signer.verifier], workers=2).first_bad_index == 200


def test_pool_of_fresh_interpreters_when_threads_are_running(
    log_signer: Signer, write_lines: Callable[[Sequence[str]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert verify._pool_context().get_start_method() == "spawn"
        monkeypatch.setattr(verify, "_POOL_MIN_BYTES", 0)
        monkeypatch.setattr(verify, "_CHUNK_BYTES", 8192)
        lines = export_lines(make_leaves(120), [log_signer], every=11)
        result = verify_export(write_lines(lines), [log_signer.verifier], workers=2)
    finally:
        stop.set()
        thread.join()
    assert result.ok
    assert result.size == 120


def test_a_pool_that_cannot_start_falls_back_to_one_process(
    export40: list[str],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> VerifyResult:
        raise BrokenProcessPool("a worker died")

    monkeypatch.setattr(verify, "_POOL_MIN_BYTES", 0)
    monkeypatch.setattr(verify, "_CHUNK_BYTES", 2048)
    monkeypatch.setattr(verify, "_fast_pooled", broken)
    assert verify_export(write_lines(export40), [log_signer.verifier], workers=2).ok


def test_both_passes_read_signed_text_leniently(log_signer: Signer) -> None:
    # A leaf whose memo holds a raw control byte and invalid UTF-8, as a foreign writer might
    # have signed it: the signed root pins the bytes, and both passes judge only the content.
    leaves = make_leaves(3)
    odd = leaf_bytes(leaves[1]).replace(b'"memo":"payout 1"', b'"memo":"pay\x01out \xff"')
    assert odd != leaf_bytes(leaves[1])
    raw = [leaf_bytes(leaves[0]), odd]
    third = dict(leaves[2], prev=leaf_hash(odd).hex())
    raw.append(leaf_bytes(third))
    lines = [b'{"type":"entry","index":%d,"leaf":%s}' % (i, data) for i, data in enumerate(raw)]
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, root([leaf_hash(x) for x in raw])), [log_signer])
    lines.append(checkpoint_line(note).rstrip("\n").encode())
    fast = verify_export(lines, [log_signer.verifier])
    exact = verify._diagnose(lines, [log_signer.verifier], None, None)
    assert fast == exact
    assert fast.ok


def test_export_from_memory_accepts_str_and_bytes(export40: list[str], log_signer: Signer) -> None:
    assert verify_export([line.encode() for line in export40], [log_signer.verifier]).ok
    assert verify_export([line.rstrip("\n") for line in export40], [log_signer.verifier]).ok


def test_blank_lines_are_ignored(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    assert run([*export40[:5], "\n", *export40[5:], "\n"]).ok


def test_reformatted_lines_are_re_encoded_canonically(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    pretty = [
        json.dumps(json.loads(line), indent=1, ensure_ascii=True).replace("\n", " ") + "\n"
        for line in export40
    ]
    assert run(pretty).ok


def test_an_export_of_the_empty_log(run: Callable[..., VerifyResult], log_signer: Signer) -> None:
    result = run(export_lines([], [log_signer]))
    assert result.ok
    assert result.size == 0
    assert result.root == root([])
    assert not run([]).ok


def test_key_rotation_keeps_old_checkpoints_valid(
    leaves40: list[Leaf], log_signer: Signer, write_lines: Callable[[Sequence[str]], Path]
) -> None:
    new = Signer.generate(ORIGIN)
    # The old key signs up to 14; the new key re-signs 14 when installed and signs from then on.
    schedule = {7: [[log_signer]], 14: [[log_signer], [new]], 21: [[new]], 28: [[new]], 40: [[new]]}
    lines: list[str] = []
    tree = CompactRange.empty()
    for leaf in leaves40:
        lines.append(entry_line(leaf["index"], leaf))
        tree.append(leaf_hash(leaf_bytes(leaf)))
        for signers in schedule.get(tree.size, []):
            lines.append(
                checkpoint_line(sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), signers))
            )
    path = write_lines(lines)
    both = verify_export(path, [log_signer.verifier, new.verifier])
    assert both.ok
    assert both.checkpoints_verified == 6
    check(verify_export(path, [new.verifier]), 0, "not trusted", "unknown keys")
    check(verify_export(path, [log_signer.verifier]), 14, "not trusted")


def test_cosigned_checkpoints_verify_with_either_key(leaves40: list[Leaf], log_signer: Signer) -> None:
    other = Signer.generate("witness.example/w1")
    lines = export_lines(leaves40, [log_signer, other])
    assert verify_export(lines, [log_signer.verifier]).ok
    assert verify_export(lines, [other.verifier]).ok


def test_origin_is_checked_when_asked(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    assert run(export40, origin=ORIGIN).ok
    check(run(export40, origin="someone.else/log"), 0, "origin")


# --- tampering --------------------------------------------------------------------------------


def test_changed_amount_that_unbalances_is_named(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    def change(leaf: Leaf) -> None:
        leaf["postings"][0]["amount"] += 1

    check(run(edit(export40, 10, change)), 10, "unbalanced")


def test_changed_amounts_that_stay_balanced_are_named(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    def change(leaf: Leaf) -> None:
        for posting in leaf["postings"]:
            posting["amount"] *= 2

    check(run(edit(export40, 10, change)), 10, "altered")


def test_changed_account_is_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    def change(leaf: Leaf) -> None:
        leaf["postings"][1]["account"] = "attacker:wallet"

    check(run(edit(export40, 10, change)), 10, "altered")


def test_changed_memo_is_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    check(run(edit(export40, 10, lambda leaf: leaf.update(memo="nothing to see"))), 10, "altered")


def test_changed_timestamp_is_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    check(run(edit(export40, 10, lambda leaf: leaf.update(occurred_at="2026-01-01T00:00:00.000000Z"))), 10)
    check(run(edit(export40, 10, lambda leaf: leaf.update(occurred_at="2026-02-30T00:00:00.000000Z"))), 10)
    check(
        run(edit(export40, 10, lambda leaf: leaf.update(occurred_at="2026-01-01 00:00:00"))),
        10,
        "occurred_at",
    )


def test_edit_just_before_a_checkpoint_is_still_pinned(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    check(run(edit(export40, 13, lambda leaf: leaf.update(memo="x"))), 13, "altered")
    check(run(edit(export40, 0, lambda leaf: leaf.update(memo="x"))), 0, "altered")


def test_edit_of_the_last_entry_is_pinned_to_its_checkpoint_interval(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf]
) -> None:
    result = run(edit(export40, 39, lambda leaf: leaf.update(memo="x")))
    check(result, 35)
    assert result.problem == (
        "one of entries 35..39 was altered: the entries do not reproduce the signed root at size 40"
    )
    assert (result.size, result.checkpoints_verified) == (35, 5)
    assert result.root == root([leaf_hash(leaf_bytes(leaf)) for leaf in leaves40[:35]])


def test_deleted_transaction_is_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    pos = entry_positions(export40)[10]
    deleted = export40[:pos] + export40[pos + 1 :]
    check(run(deleted), 10, "missing")
    check(run(renumber(deleted, pos, -1)), 10, "does not link")


def test_inserted_forgery_is_named(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf]
) -> None:
    pos = entry_positions(export40)[10]
    forged = dict(leaves40[10], tx="TX-FORGED", key="forged", memo="forged")
    forged["prev"] = leaf_hash(leaf_bytes(leaves40[9])).hex()
    naive = [*export40[:pos], entry_line(10, forged), *export40[pos:]]
    check(run(naive), 10, "appears again")
    shifted = [*export40[:pos], entry_line(10, forged), *renumber(export40, pos, 1)[pos:]]
    check(run(shifted), 10, "was inserted: entry 11 links to entry 9")
    blind = dict(forged, prev="ab" * 32)
    check(run([*export40[:pos], entry_line(10, blind), *renumber(export40, pos, 1)[pos:]]), 10)


def test_swapped_entries_are_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    positions = entry_positions(export40)
    for a, b in ((10, 12), (10, 11)):
        moved = list(export40)
        pa, pb = positions[a], positions[b]
        moved[pa], moved[pb] = moved[pb], moved[pa]
        check(run(moved), a, "missing")
        relabelled = list(moved)
        for pos, index in ((pa, a), (pb, b)):
            leaf = json.loads(relabelled[pos])["leaf"]
            leaf["index"] = index
            relabelled[pos] = entry_line(index, leaf)
        check(run(relabelled), a, "does not link")


def test_swapped_index_labels_are_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    positions = entry_positions(export40)
    out = list(export40)
    for pos, index in ((positions[10], 12), (positions[12], 10)):
        leaf = json.loads(out[pos])["leaf"]
        leaf["index"] = index
        out[pos] = entry_line(index, leaf)
    check(run(out), 10, "missing")


def test_truncated_export_is_named(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf], log_signer: Signer
) -> None:
    positions = entry_positions(export40)
    check(run(export40[: positions[24] + 1]), 25, "truncated")
    partial = [*export40[: positions[25]], export40[positions[25]][:60]]
    check(run(partial), 25, "not valid JSON")
    at_checkpoint = export40[: positions[27] + 2]
    assert at_checkpoint[-1].startswith('{"type":"checkpoint"')
    trusted = checkpoint_note(leaves40, 40, [log_signer])
    result = run(at_checkpoint, trusted=trusted)
    check(result, 28, "trusted checkpoint has size 40")
    assert result.size == 28
    assert run(at_checkpoint).ok


def test_checkpoints_re_signed_with_an_unknown_key_are_named(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    mallory = Signer.generate(ORIGIN)

    def resign(lines: Sequence[str], from_size: int) -> list[str]:
        out = []
        for line in lines:
            if line.startswith('{"type":"checkpoint"'):
                text = json.loads(line)["note"].split("\n\n")[0] + "\n"
                checkpoint = Checkpoint.parse(text)
                if checkpoint.size >= from_size:
                    line = checkpoint_line(sign_checkpoint(checkpoint, [mallory]))
            out.append(line)
        return out

    check(run(resign(export40, 0)), 0, "no signature by a trusted key")
    check(run(resign(export40, 14)), 7, "no signature by a trusted key")


def test_rechained_forgery_under_genuine_checkpoints_is_pinned_to_its_interval(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf]
) -> None:
    forged = list(leaves40)
    forged[10] = dict(forged[10], memo="rewritten history")
    forged = chained(forged, 11)
    lines = list(export40)
    for leaf, pos in zip(forged, entry_positions(export40), strict=True):
        lines[pos] = entry_line(leaf["index"], leaf)
    check(run(lines), 7, "signed root at size 14")


def test_rechained_forgery_after_genuine_checkpoints(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf], log_signer: Signer
) -> None:
    mallory = Signer.generate(ORIGIN)
    forged = list(leaves40)
    forged[10] = dict(forged[10], memo="rewritten history")
    forged = chained(forged, 11)
    tail = export_lines(forged, [mallory])
    cut = entry_positions(export40)[7]
    lines = [*export40[:cut], *tail[cut:]]
    check(run(lines), 7, "no signature by a trusted key")


def test_wrong_root_under_a_genuine_signature_is_named(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf], log_signer: Signer
) -> None:
    out = list(export40)
    pos = entry_positions(export40)[20] + 1
    out[pos] = checkpoint_line(sign_checkpoint(Checkpoint(ORIGIN, 21, bytes(32)), [log_signer]))
    check(run(out), 14, "signed root at size 21")


def test_misplaced_checkpoint_is_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    out = list(export40)
    pos = entry_positions(export40)[20] + 1
    out.insert(pos - 1, out.pop(pos))
    check(run(out), 14, "is for size 21 but follows 20 entries")


def test_garbage_lines_are_named(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    pos = entry_positions(export40)[10]
    check(run([*export40[:pos], "[1, 2]\n", *export40[pos:]]), 10, "not a JSON object")
    check(run([*export40[:pos], '{"type":"entry","index":10}\n', *export40[pos:]]), 10)
    check(run([*export40[:pos], '{"type":"checkpoint","note":5}\n', *export40[pos:]]), 10)


def test_export_starting_past_zero_is_refused(run: Callable[..., VerifyResult], export40: list[str]) -> None:
    check(run(export40[entry_positions(export40)[8] :]), 0, "missing")


# --- trusted checkpoints ----------------------------------------------------------------------


def test_trusted_checkpoint_inside_the_export(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf], log_signer: Signer
) -> None:
    for size in (0, 1, 7, 23, 40):
        assert run(export40, trusted=checkpoint_note(leaves40, size, [log_signer])).ok


def test_trusted_checkpoint_that_disagrees_is_a_split_view(
    run: Callable[..., VerifyResult], export40: list[str], log_signer: Signer
) -> None:
    other = make_leaves(40)
    other[20] = dict(other[20], memo="another history")
    other = chained(other, 21)
    trusted = checkpoint_note(other, 23, [log_signer])
    result = run(export40, trusted=trusted)
    check(result, 21)
    assert result.problem == (
        "one of entries 21..22 differs: the root at size 23 differs from the trusted checkpoint"
    )


def test_untrusted_trusted_checkpoint_is_refused(
    run: Callable[..., VerifyResult], export40: list[str], leaves40: list[Leaf]
) -> None:
    stranger = Signer.generate(ORIGIN)
    result = run(export40, trusted=checkpoint_note(leaves40, 7, [stranger]))
    problem = (
        "trusted checkpoint: note has no signature by a trusted key; it is signed only by unknown keys: "
        f"{ORIGIN}+{stranger.key_id.hex()}"
    )
    assert result == VerifyResult(False, 0, None, 0, None, problem)


# --- writer helpers ---------------------------------------------------------------------------


def test_entry_line_layout(leaves40: list[Leaf]) -> None:
    leaf = leaves40[1]
    line = entry_line(1, leaf)
    assert line == '{"type":"entry","index":1,"leaf":' + leaf_bytes(leaf).decode() + "}\n"
    assert entry_line(1, leaf_bytes(leaf)) == line
    with pytest.raises(ValueError, match="^leaf index 1 differs from line index 2$"):
        entry_line(2, leaf)
    with pytest.raises(ValueError, match="do not start with index 2"):
        entry_line(2, leaf_bytes(leaf))


def test_checkpoint_line_round_trips() -> None:
    note = "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 o AAAA\n"
    line = checkpoint_line(note)
    assert line.endswith("\n")
    assert json.loads(line) == {"type": "checkpoint", "note": note}
    assert line.startswith('{"type":"checkpoint","note":')
    # The note's em dash is written as it is, like every other character.
    assert line == '{"type":"checkpoint","note":' + json.dumps(note, ensure_ascii=False) + "}\n"
    assert "\u2014" in line


def test_reports_say_where_the_problem_is() -> None:
    verified = VerifyResult(True, 2, bytes(32), 1)
    assert verified.report() == (
        "OK: verified 2 entries and 1 checkpoints\nsize: 2\n"
        f"root (hex): {'00' * 32}\nroot (base64): {base64.b64encode(bytes(32)).decode()}"
    )
    bad = VerifyResult(False, 7, bytes(32), 1, 9, "was altered")
    assert bad.report() == f"entry 9: was altered\nverified before the problem: size 7, root {'00' * 32}"
    assert (
        VerifyResult(False, 0, None, 0, None, "the export is empty").report() == "export: the export is empty"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        bad.ok = True  # type: ignore[misc]


# --- command line -----------------------------------------------------------------------------


def test_main_prints_size_and_root(
    export40: list[str],
    leaves40: list[Leaf],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    note_file = tmp_path / "trusted.note"
    note_file.write_text(checkpoint_note(leaves40, 30, [log_signer]), encoding="utf-8")
    path = write_lines(export40)
    assert main([str(path), "--key", log_signer.vkey, "--trusted-checkpoint", str(note_file)]) == 0
    out = capsys.readouterr().out
    tree = CompactRange.empty()
    for leaf in leaves40:
        tree.append(leaf_hash(leaf_bytes(leaf)))
    assert "size: 40" in out
    assert tree.root().hex() in out
    assert base64.b64encode(tree.root()).decode() in out


def test_main_names_the_first_bad_entry(
    export40: list[str],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_lines(edit(export40, 12, lambda leaf: leaf.update(memo="x")))
    other = Signer.generate("other.example/log")
    assert main([str(path), "--key", other.vkey, "--key", log_signer.vkey]) == 1
    assert capsys.readouterr().out.startswith("entry 12: ")


def test_main_rejects_a_bad_key(
    export40: list[str], write_lines: Callable[[Sequence[str]], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(write_lines(export40)), "--key", "not-a-key"])
    assert exc.value.code == 2
    assert "--key" in capsys.readouterr().err


BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"flask", "sqlalchemy", "rq", "click"}:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Blocked())
from payments.ledger.verify import main
code = main(sys.argv[1:])
assert not {"flask", "sqlalchemy", "rq", "click"} & {m.split(".")[0] for m in sys.modules}
sys.exit(code)
"""


def test_verifier_runs_without_flask_sqlalchemy_rq_or_click(
    export40: list[str], log_signer: Signer, write_lines: Callable[[Sequence[str]], Path]
) -> None:
    path = write_lines(export40)
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(path), "--key", log_signer.vkey],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "size: 40" in done.stdout
    bad = write_lines(edit(export40, 5, lambda leaf: leaf.update(memo="x")))
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(bad), "--key", log_signer.vkey],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("entry 5: ")


# --- content under genuine signatures ---------------------------------------------------------


def signed_lines(entries: Sequence[tuple[int, bytes]], signer: Signer, every: int = 4) -> list[str]:
    """Write ``(line index, leaf bytes)`` entries with checkpoints honestly signed over those bytes."""
    lines: list[str] = []
    hashes: list[bytes] = []
    for index, data in entries:
        lines.append(f'{{"type":"entry","index":{index},"leaf":{data.decode()}}}\n')
        hashes.append(leaf_hash(data))
        if len(hashes) % every == 0 or len(hashes) == len(entries):
            note = sign_checkpoint(Checkpoint(ORIGIN, len(hashes), root(hashes)), [signer])
            lines.append(checkpoint_line(note))
    return lines


def refused_by_fast_path(lines: Sequence[str]) -> bool:
    """Return whether the fast path hands the lines over to the diagnosing pass."""
    return verify._scan_lines([line.rstrip("\n").encode() for line in lines], None).ok is False


def reformatted(lines: Sequence[str]) -> list[str]:
    """Return the lines in another JSON layout, which takes the general parser."""
    return [json.dumps(json.loads(line), indent=1).replace("\n", " ") + "\n" for line in lines]


def _amounts(*amounts: int) -> Callable[[Leaf], None]:
    def change(leaf: Leaf) -> None:
        leaf["postings"] = [dict(p, amount=a) for p, a in zip(leaf["postings"], amounts, strict=True)]

    return change


# Leaf 6 has the writer's flat layout (the fast path), leaf 4 three postings, leaf 5 nested metadata.
MALFORMED: dict[str, tuple[int, Callable[[Leaf], None], str]] = {
    "same signs": (6, _amounts(10_822, 10_822), "unbalanced"),
    "other digits": (6, _amounts(-10_822, 10_823), "unbalanced"),
    "third posting": (4, _amounts(-10_548, 1_001, 9_548), "unbalanced"),
    "nested metadata": (5, _amounts(-10_685, 10_686), "unbalanced"),
    "no such day": (6, lambda leaf: leaf.update(occurred_at="2026-02-30T00:00:06.000006Z"), "occurred_at"),
}


@pytest.mark.parametrize("layout", ["writer", "reformatted"])
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_leaf_is_refused_even_under_genuine_signatures(
    run: Callable[..., VerifyResult], log_signer: Signer, case: str, layout: str
) -> None:
    index, change, word = MALFORMED[case]
    leaves = [dict(leaf, postings=[dict(p) for p in leaf["postings"]]) for leaf in make_leaves(12)]
    change(leaves[index])
    lines = signed_lines(
        [(i, leaf_bytes(leaf)) for i, leaf in enumerate(chained(leaves, index + 1))], log_signer
    )
    if layout == "reformatted":
        lines = reformatted(lines)
    assert refused_by_fast_path(lines)
    check(run(lines), index, word)


def test_a_broken_chain_is_refused_even_under_genuine_signatures(
    run: Callable[..., VerifyResult], log_signer: Signer
) -> None:
    leaves = make_leaves(12)
    for broken in (1, 6, 11):
        bad = list(leaves)
        bad[broken] = dict(bad[broken], prev="ab" * 32)
        lines = signed_lines(
            [(i, leaf_bytes(leaf)) for i, leaf in enumerate(chained(bad, broken + 1))], log_signer
        )
        assert refused_by_fast_path(lines)
        check(run(lines), broken - 1 if broken < 11 else broken)
        check(run(reformatted(lines)), broken - 1 if broken < 11 else broken)
    two = [leaves[0], dict(leaves[1], prev="ab" * 32)]
    lines = signed_lines([(i, leaf_bytes(leaf)) for i, leaf in enumerate(two)], log_signer)
    assert refused_by_fast_path(lines)
    check(run(lines), 1, "does not link to entry 0")


def test_an_export_whose_first_entry_does_not_start_the_log_names_entry_0(
    run: Callable[..., VerifyResult], log_signer: Signer, export40: list[str]
) -> None:
    leaves = chained([dict(make_leaves(12)[0], prev="ab" * 32), *make_leaves(12)[1:]], 1)
    lines = signed_lines([(i, leaf_bytes(leaf)) for i, leaf in enumerate(leaves)], log_signer)
    # Entry 1 links to entry 0 correctly, which once blamed an "entry -1".
    assert refused_by_fast_path(lines)
    check(run(lines), 0, "prev: must be 64 zeros for index 0")
    edited = edit(export40, 0, lambda leaf: leaf.update(prev="ab" * 32))
    check(run(edited), 0, "prev: must be 64 zeros for index 0")


def test_gaps_and_repeats_are_refused_even_under_genuine_signatures(
    run: Callable[..., VerifyResult], log_signer: Signer
) -> None:
    leaves = make_leaves(12)
    gap = chained([*leaves[:6], *leaves[7:]], 6)
    lines = signed_lines([(leaf["index"], leaf_bytes(leaf)) for leaf in gap], log_signer)
    assert refused_by_fast_path(lines)
    check(run(lines), 6, "missing: line 8 holds entry 7 in its place")
    repeat = chained([*leaves[:7], leaves[6], *leaves[7:]], 7)
    lines = signed_lines([(leaf["index"], leaf_bytes(leaf)) for leaf in repeat], log_signer)
    assert refused_by_fast_path(lines)
    check(run(lines), 6, "appears again at line 9, after entry 6")


def test_a_leaf_index_that_differs_from_its_line_is_named_first(
    run: Callable[..., VerifyResult], log_signer: Signer
) -> None:
    leaves = [dict(leaf, postings=[dict(p) for p in leaf["postings"]]) for leaf in make_leaves(8)]
    entries = [(i, leaf_bytes(leaf)) for i, leaf in enumerate(leaves)]
    wrong = dict(leaves[6], index=7, occurred_at="2026-02-30T00:00:06.000006Z")
    _amounts(10_822, 10_822)(wrong)
    entries[6] = (6, leaf_bytes(wrong))
    lines = signed_lines(entries, log_signer)
    assert refused_by_fast_path(lines)
    result = run(lines)
    check(result, 6)
    problems = (result.problem or "").split("; ")
    assert len(problems) == 3
    assert problems[0] == "leaf index 7 differs from line index 6"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"type":"entry","index":-1,"leaf":{}}', "line 1: line index -1 is not a non-negative integer"),
        ('{"type":"entry","index":"0","leaf":{}}', "line 1: line index '0' is not a non-negative integer"),
        ('{"type":"entry","index":true,"leaf":{}}', "line 1: line index True is not a non-negative integer"),
        (
            '{"type":"entry","index":0}',
            "line 1: line is neither an entry {type, index, leaf} nor a checkpoint",
        ),
        (
            '{"type":"checkpoint","note":5}',
            "line 1: checkpoint line must hold exactly a type and a string note",
        ),
        ("[1, 2]", "line 1: line is not a JSON object"),
        ('{"type":"entry",', "line 1: line is not valid JSON (a corrupt or truncated line)"),
    ],
)
def test_bad_line_indexes_are_named(run: Callable[..., VerifyResult], line: str, problem: str) -> None:
    result = run([line + "\n"])
    assert (result.ok, result.first_bad_index, result.problem) == (False, 0, problem)


def test_leaves_without_a_canonical_form_or_a_prev_are_named(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    pos = entry_positions(export40)[3]
    for prev in ("null", "7", '"short"'):
        lines = list(export40)
        lines[pos] = reformatted([lines[pos]])[0].replace(
            f'"prev": "{leaf_at(export40, 3)["prev"]}"', f'"prev": {prev}'
        )
        check(run(lines), 3, "prev")
    lines = list(export40)
    lines[pos] = reformatted([lines[pos]])[0].replace('"amount": -10411', '"amount": -10411.0')
    result = run(lines)
    check(result, 3, "floats are not allowed in canonical JSON")
    assert "leaf has no canonical form" in (result.problem or "")


# --- the fast path ----------------------------------------------------------------------------


def _valid_variants(leaves: list[Leaf], signer: Signer) -> dict[str, tuple[list[str], str | None, int]]:
    lines = export_lines(leaves, [signer])
    return {
        "every entry": (export_lines(leaves, [signer], every=1), None, 40),
        "every third": (export_lines(leaves, [signer], every=3), None, 40),
        "blank lines": ([*lines[:5], "\n", *lines[5:20], "\n", "\n", *lines[20:]], None, 40),
        "reformatted": (reformatted(lines), None, 40),
        "trusted 0": (lines, checkpoint_note(leaves, 0, [signer]), 40),
        "trusted 1": (lines, checkpoint_note(leaves, 1, [signer]), 40),
        "trusted 23": (lines, checkpoint_note(leaves, 23, [signer]), 40),
        "trusted 40": (lines, checkpoint_note(leaves, 40, [signer]), 40),
        "empty log": (export_lines([], [signer]), None, 0),
        "empty log, trusted 0": (export_lines([], [signer]), checkpoint_note(leaves, 0, [signer]), 0),
        "one entry": (export_lines(leaves[:1], [signer]), None, 1),
    }


@pytest.mark.parametrize("chunk", [4096, 1 << 22])
def test_valid_exports_of_every_shape_never_need_the_diagnosing_pass(
    leaves40: list[Leaf],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
) -> None:
    def refuse(*args: object) -> VerifyResult:
        raise AssertionError("the fast path gave up on a valid export")

    monkeypatch.setattr(verify, "_diagnose", refuse)
    monkeypatch.setattr(verify, "_CHUNK_BYTES", chunk)
    for name, (lines, trusted, size) in _valid_variants(leaves40, log_signer).items():
        # A fresh date cache, so that every run validates its dates itself.
        monkeypatch.setattr(verify, "_valid_dates", set())
        for source in (lines, write_lines(lines)):
            result = verify_export(source, [log_signer.verifier], trusted, workers=1)
            assert (result.ok, result.size) == (True, size), name


def test_an_entry_without_a_checkpoint_is_refused(
    run: Callable[..., VerifyResult], export40: list[str], log_signer: Signer
) -> None:
    lines = export_lines(make_leaves(1), [log_signer])
    check(run(lines[:1]), 1, "missing: the export ends without a checkpoint over entries 0..0 (truncated)")


def test_chunks_start_at_line_starts_and_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"123456789\n" * 10)
    assert verify._ranges(str(path), 25) == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert verify._ranges(str(path), 30) == [(0, 40), (40, 80), (80, 100)]
    assert verify._ranges(str(path), 95) == [(0, 100)]
    assert verify._ranges(str(path), 100) == [(0, 100)]
    assert verify._ranges(str(path), 1000) == [(0, 100)]


def test_a_chunk_reads_exactly_its_lines(
    export40: list[str], write_lines: Callable[[Sequence[str]], Path]
) -> None:
    path = write_lines(export40)
    ranges = verify._ranges(str(path), 2048)
    assert len(ranges) > 3
    seen = 0
    for begin, end in ranges:
        chunk = verify._scan_range((str(path), begin, end, None))
        assert chunk.ok is True
        assert (chunk.first, chunk.count) == (seen if chunk.count else 0, chunk.count)
        seen += chunk.count
    assert seen == 40


def test_a_trusted_empty_tree_with_another_root_is_a_split_view(
    run: Callable[..., VerifyResult], export40: list[str], log_signer: Signer
) -> None:
    trusted = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), [log_signer])
    check(run(export40, trusted=trusted), 0, "the root at size 0 differs from the trusted checkpoint")
    check(run([], trusted=trusted), 0, "the root at size 0 differs from the trusted checkpoint")


def test_an_export_with_no_lines_is_empty(run: Callable[..., VerifyResult]) -> None:
    assert run([]) == VerifyResult(False, 0, None, 0, None, "the export is empty")
    assert run(["\n", "\n"]) == VerifyResult(False, 0, None, 0, None, "the export is empty")


def test_an_edit_is_named_before_a_later_fault_that_follows_it(
    run: Callable[..., VerifyResult], export40: list[str]
) -> None:
    # Entry 9 edited, entry 10 unbalanced, entry 11 relinked to the new entry 10: entry 10's
    # broken link only blames entry 9 once entry 11 is read, after entry 10's own problem.
    lines = edit(export40, 9, lambda leaf: leaf.update(memo="edited"))
    lines = edit(lines, 10, _amounts(-11_370, 11_371))
    lines = edit(lines, 11, lambda leaf: leaf.update(prev=leaf_hash(leaf_bytes(leaf_at(lines, 10))).hex()))
    check(run(lines), 9, "was altered: its hash is not the prev link of entry 10")


def test_main_explains_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("usage: python -m payments.ledger.verify ")
    for text in (
        "Verify a chopay ledger export offline against the log's public keys.",
        "the JSON Lines export (from index 0)",
        "trusted verifier key (repeatable)",
        "--trusted-checkpoint NOTEFILE a checkpoint you trust",
        "require every checkpoint to carry this origin",
        "processes to use (default: one per CPU)",
    ):
        assert text in out


def test_verifier_keys_may_come_from_any_iterable_but_not_none(
    export40: list[str], log_signer: Signer
) -> None:
    assert verify_export(export40, iter([log_signer.verifier])).ok
    for nothing in ([], iter([])):
        with pytest.raises(ValueError, match="^at least one trusted verifier key is needed$"):
            verify_export(export40, nothing)


def test_plain_writer_lines_never_reach_the_general_parser(
    export40: list[str],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = verify._parse_line

    def parse(line: bytes) -> object:
        # Escapes and nested metadata are the writer's layouts the regular expression leaves out.
        if line.startswith(b'{"type":"entry"') and b"\\" not in line and b'"refs"' not in line:
            raise AssertionError(f"took the general parser: {line[:60]!r}")
        return real(line)

    monkeypatch.setattr(verify, "_parse_line", parse)
    assert verify_export(export40, [log_signer.verifier]).ok
    assert verify_export(write_lines(export40), [log_signer.verifier], workers=1).ok


def test_lines_are_handed_over_in_batches() -> None:
    assert list(verify._chunked([b"a", b"b", b"c", b"d", b"e"], 2)) == [[b"a", b"b"], [b"c", b"d"], [b"e"]]
    assert list(verify._chunked([b"a", b"b"], 2)) == [[b"a", b"b"]]
    assert list(verify._chunked([], 2)) == []


def test_a_single_threaded_process_forks_its_pool() -> None:
    # In a fresh interpreter: this test process may run other threads (job runners, servers).
    probe = "from payments.ledger import verify; print(verify._pool_context().get_start_method())"
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "fork"


def test_main_needs_a_key_and_an_existing_export(
    export40: list[str],
    leaves40: list[Leaf],
    log_signer: Signer,
    write_lines: Callable[[Sequence[str]], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_lines(export40)
    with pytest.raises(SystemExit) as exc:
        main([str(path)])
    assert exc.value.code == 2
    assert "the following arguments are required: --key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing.jsonl"), "--key", log_signer.vkey])
    assert exc.value.code == 2
    assert f"{tmp_path / 'missing.jsonl'}: no such file" in capsys.readouterr().err
    other = make_leaves(40)
    other[3] = dict(other[3], memo="another history")
    note_file = tmp_path / "other.note"
    note_file.write_text(checkpoint_note(chained(other, 4), 10, [log_signer]), encoding="utf-8")
    assert main([str(path), "--key", log_signer.vkey, "--trusted-checkpoint", str(note_file)]) == 1
    assert capsys.readouterr().out.startswith(
        "entry 7: one of entries 7..9 differs: the root at size 10 differs from the trusted checkpoint\n"
    )


def test_a_trusted_empty_tree_with_another_root_refuses_an_empty_log(
    run: Callable[..., VerifyResult], log_signer: Signer
) -> None:
    trusted = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), [log_signer])
    check(run(export_lines([], [log_signer]), trusted=trusted), 0, "differs from the trusted checkpoint")


def test_a_file_without_a_final_newline_reads_the_same(
    export40: list[str], log_signer: Signer, tmp_path: Path
) -> None:
    edited = edit(export40, 12, lambda leaf: leaf.update(memo="x"))
    path = tmp_path / "no-final-newline.jsonl"
    path.write_text("".join(edited).rstrip("\n"), encoding="utf-8")
    result = verify_export(path, [log_signer.verifier], workers=1)
    assert result == verify_export(edited, [log_signer.verifier])
    check(result, 12, "altered")
