"""The auditor's checks of the live log, without HTTP: each way a pasted checkpoint can fail."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask

from chopay.db import get_db
from payments.ledger import checks, keys, tree
from payments.ledger.note import Checkpoint, Signer, sign_checkpoint
from tests.payments.reconciliation.planted import D3, post_ledger

ORIGIN = "chopay.local/ledger"


@pytest.fixture
def signer(app: Flask) -> Signer:
    found = keys.load_signer(app.config["CHOPAY"])
    assert found is not None
    return found


def _check(app: Flask, note: str) -> checks.Consistency:
    settings = app.config["CHOPAY"]
    with get_db(app).read_session() as s:
        return checks.consistency(s, keys.trusted_verifiers(settings), settings.ledger_origin, note)


def _latest(app: Flask) -> checks.LatestCheckpoint | None:
    settings = app.config["CHOPAY"]
    with get_db(app).read_session() as s:
        return checks.latest(s, keys.trusted_verifiers(settings), settings.ledger_origin)


def _root(app: Flask, size: int) -> bytes:
    with get_db(app).read_session() as s:
        return tree.root_at(s, size)


def test_the_latest_checkpoint_is_verified_and_matches_the_log(app, book):
    assert _latest(app) is None
    post_ledger(book)
    latest = _latest(app)
    assert latest is not None
    assert (latest.size, latest.signature_ok, latest.root_ok, latest.unsealed) == (9, True, True, 0)
    assert latest.signed_by == (ORIGIN,)


def test_an_older_checkpoint_of_this_log_is_consistent(app, book, signer):
    post_ledger(book)
    book.fund("funding:2026-12", 1_000_000, D3)
    book.seal()
    for size in (1, 5, 9, 10):
        old = sign_checkpoint(Checkpoint(ORIGIN, size, _root(app, size)), [signer])
        result = _check(app, old)
        assert (result.ok, result.code, result.old_size, result.new_size) == (True, "consistent", size, 10)


def test_a_checkpoint_with_another_history_is_a_fork(app, book, signer):
    post_ledger(book)
    other = hashlib.sha256(b"another history").digest()
    for size in (4, 9):  # shorter than the log, and as long
        result = _check(app, sign_checkpoint(Checkpoint(ORIGIN, size, other), [signer]))
        assert (result.ok, result.code) == (False, "fork")


def test_a_checkpoint_ahead_of_the_log_says_entries_were_lost(app, book, signer):
    post_ledger(book)
    result = _check(app, sign_checkpoint(Checkpoint(ORIGIN, 12, _root(app, 9)), [signer]))
    assert (result.ok, result.code) == (False, "newer")


def test_a_checkpoint_of_another_origin_is_refused(app, book, signer):
    post_ledger(book)
    result = _check(app, sign_checkpoint(Checkpoint("other.example/log", 9, _root(app, 9)), [signer]))
    assert (result.ok, result.code) == (False, "origin")


def test_a_checkpoint_signed_by_an_unknown_key_is_not_verified(app, book):
    post_ledger(book)
    stranger = Signer.generate(ORIGIN)
    result = _check(app, sign_checkpoint(Checkpoint(ORIGIN, 9, _root(app, 9)), [stranger]))
    assert (result.ok, result.code) == (False, "signature")


def test_nothing_to_compare_before_the_first_checkpoint(app, signer):
    result = _check(app, sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x00" * 32), [signer]))
    assert (result.ok, result.code) == (False, "no_checkpoint")


@pytest.mark.parametrize("note", ["", "x" * (checks.MAX_NOTE_CHARS + 1), "chopay.local/ledger\n1\n"])
def test_text_that_is_no_checkpoint_is_malformed(app, book, note):
    post_ledger(book)
    assert _check(app, note).code == "malformed"
