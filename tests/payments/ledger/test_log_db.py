"""The sequencer, stored-node proofs, checkpoints and tamper detection in the database."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from payments.ledger import audit, entries, merkle, sequencer, services, tree
from payments.ledger.canonical import leaf_bytes
from payments.ledger.errors import EntryNotFound
from payments.ledger.models import Checkpoint, Entry, Pending, Transaction
from payments.ledger.models import Posting as PostingRow
from payments.ledger.note import Checkpoint as CheckpointBody
from payments.ledger.note import Signer, open_note, sign_checkpoint
from payments.ledger.verify import verify_export


def post_n(session, make_spec, n, start=0):
    return [services.post(session, make_spec(f"k{i}", 1_000 + i)).id for i in range(start, start + n)]


def leaf_hashes(session):
    return list(session.scalars(sa.select(Entry.leaf_hash).order_by(Entry.idx)))


def test_sequencer_assigns_gap_free_indexes_in_one_order(book, make_spec):
    ids = post_n(book, make_spec, 7)
    assert sequencer.sequence(book, batch=3) == 7
    assert sequencer.sequence(book) == 0
    rows = book.execute(sa.select(Entry.transaction_id, Entry.idx).order_by(Entry.idx)).all()
    assert [r.idx for r in rows] == list(range(7))
    assert [r.transaction_id for r in rows] == ids
    assert book.scalar(sa.select(sa.func.count()).select_from(Pending)) == 0
    assert tree.current_size(book) == 7


def test_batching_does_not_change_the_tree(book, make_spec):
    post_n(book, make_spec, 11)
    sequencer.sequence(book, batch=2)
    hashes = leaf_hashes(book)
    assert tree.root_at(book, 11) == merkle.root(hashes)
    # Each leaf is the canonical JSON of its transaction, chained to the previous leaf's hash.
    found = entries.entries(book, from_index=0, limit=100)
    assert [merkle.leaf_hash(leaf_bytes(e.leaf)) for e in found] == hashes
    assert found[0].leaf["prev"] == "0" * 64
    assert all(e.leaf["prev"] == found[i].leaf_hash.hex() for i, e in enumerate(found[1:]))


def test_leaves_carry_references_not_personal_data(book, make_spec):
    services.post(book, make_spec("k-ref", 5_000, metadata={"payout_ref": "PO-000001"}))
    sequencer.sequence(book)
    (entry,) = entries.entries(book)
    assert set(entry.leaf) == {
        "v",
        "index",
        "prev",
        "tx",
        "key",
        "kind",
        "memo",
        "occurred_at",
        "metadata",
        "postings",
        "reverses",
    }
    assert entry.leaf["metadata"] == {"payout_ref": "PO-000001"}


def test_stored_node_proofs_match_the_reference_algorithm(book, make_spec):
    n = 19
    post_n(book, make_spec, n)
    sequencer.sequence(book, batch=4)
    hashes = leaf_hashes(book)
    for size in range(1, n + 1):
        for index in range(size):
            got = tree.inclusion(book, index, size)
            assert got["proof"] == merkle.inclusion_proof(index, hashes[:size])
            assert merkle.verify_inclusion(
                index, size, hashes[index], got["proof"], merkle.root(hashes[:size])
            )
        for first in range(1, size + 1):
            c = tree.consistency(book, first, size)
            assert c["proof"] == merkle.consistency_proof(first, hashes[:size])
            assert merkle.verify_consistency(first, size, c["first_root"], c["second_root"], c["proof"])


def test_checkpoints_are_signed_when_the_log_grows(book, make_spec, signer, verifier):
    assert sequencer.checkpoint(book, signer, "test.example/ledger") is None  # empty log
    post_n(book, make_spec, 3)
    sequencer.sequence(book)
    cp = sequencer.checkpoint(book, signer, "test.example/ledger")
    assert cp is not None
    assert cp.size == 3
    text, names = open_note(cp.note, [verifier])
    assert names == [signer.name]
    body = CheckpointBody.parse(text)
    assert (body.origin, body.size, body.root) == ("test.example/ledger", 3, merkle.root(leaf_hashes(book)))
    assert sequencer.checkpoint(book, signer, "test.example/ledger") is None  # nothing new
    post_n(book, make_spec, 1, start=3)
    sequencer.sequence(book)
    assert sequencer.checkpoint(book, signer, "test.example/ledger", min_interval=3600) is None  # too soon
    assert sequencer.checkpoint(book, signer, "test.example/ledger").size == 4


def test_out_of_range_proofs_are_not_found(book, make_spec, signer):
    post_n(book, make_spec, 2)
    sequencer.sequence(book)
    sequencer.checkpoint(book, signer, "o")
    for call in (
        lambda: tree.inclusion(book, 2),
        lambda: tree.inclusion(book, 0, 3),
        lambda: tree.consistency(book, 3),
        lambda: tree.consistency(book, 1, 5),
    ):
        with pytest.raises(EntryNotFound) as err:
            call()
        assert getattr(err.value, "status", None) == 404


@pytest.fixture
def sealed(book, make_spec, signer):
    """Eight sequenced entries with a checkpoint after each."""
    for i in range(8):
        services.post(book, make_spec(f"s{i}", 10_000 + i, memo=f"entry {i}"))
        sequencer.sequence(book)
        sequencer.checkpoint(book, signer, "test.example/ledger")
    return book


def test_untouched_database_verifies(sealed, verifier):
    result = audit.verify_database(sealed, [verifier])
    assert result.ok, result.describe()
    assert result.size == 8
    assert result.checkpoints == 8
    assert result.root == merkle.root(leaf_hashes(sealed))
    lines = list(entries.export_lines(sealed))
    assert len(lines) == 16
    assert verify_export(lines, [verifier]).ok


def _tx_at(session, index):
    return session.scalar(
        sa.select(Transaction).join(Entry, Entry.transaction_id == Transaction.id).where(Entry.idx == index)
    )


def _entry_at(session, index):
    return session.scalar(sa.select(Entry).where(Entry.idx == index))


def _delete_tx(session, tx_id):
    session.execute(sa.delete(Entry).where(Entry.transaction_id == tx_id))
    session.execute(sa.delete(PostingRow).where(PostingRow.transaction_id == tx_id))
    session.execute(sa.delete(Transaction).where(Transaction.id == tx_id))


def _first_posting(session, index):
    tx = _tx_at(session, index)
    return session.scalar(
        sa.select(PostingRow).where(PostingRow.transaction_id == tx.id, PostingRow.seq == 0)
    )


TAMPERINGS = {
    "posting amount": lambda s: s.execute(
        sa.update(PostingRow)
        .where(PostingRow.id == _first_posting(s, 5).id)
        .values(amount=PostingRow.amount + 1)
    ),
    "posting account": lambda s: s.execute(
        sa.update(PostingRow)
        .where(PostingRow.id == _first_posting(s, 5).id)
        .values(
            account_id=sa.select(sa.text("id"))
            .select_from(sa.text("ledger_accounts"))
            .where(sa.text("code = 'bank:settlement'"))
            .scalar_subquery()
        )
    ),
    "memo": lambda s: s.execute(
        sa.update(Transaction).where(Transaction.id == _tx_at(s, 5).id).values(memo="edited")
    ),
    "timestamp": lambda s: s.execute(
        sa.update(Transaction)
        .where(Transaction.id == _tx_at(s, 5).id)
        .values(occurred_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    ),
}


@pytest.mark.parametrize("what", sorted(TAMPERINGS))
def test_edited_rows_are_named_by_index(sealed, verifier, what):
    TAMPERINGS[what](sealed)
    sealed.flush()
    result = audit.verify_database(sealed, [verifier])
    assert not result.ok
    assert result.first_bad_index == 5, result.describe()


def test_deleted_transaction_is_named(sealed, verifier):
    _delete_tx(sealed, _tx_at(sealed, 3).id)
    result = audit.verify_database(sealed, [verifier])
    assert (result.ok, result.first_bad_index) == (False, 3), result.describe()


def test_inserted_forgery_is_named(sealed, verifier, make_spec):
    # The forger shifts entries 4.. up by one and slots a transaction in at index 4, with a
    # correctly computed leaf hash, so only the chain and the signed roots can betray it.
    sealed.execute(sa.update(Entry).where(Entry.idx >= 4).values(idx=Entry.idx + 100))
    sealed.execute(sa.update(Entry).where(Entry.idx >= 104).values(idx=Entry.idx - 99))
    forged = services.post(sealed, make_spec("forged", 999))
    row = entries._rows_with_postings(sealed, [forged.id])[0]
    leaf = entries.leaf_for(row[0], row[1], 4, _entry_at(sealed, 3).leaf_hash)
    sealed.execute(sa.delete(Pending))
    sealed.add(Entry(idx=4, transaction_id=forged.id, leaf_hash=merkle.leaf_hash(leaf_bytes(leaf))))
    sealed.flush()
    sealed.execute(sa.text("UPDATE ledger_state SET size = 9"))
    result = audit.verify_database(sealed, [verifier])
    assert (result.ok, result.first_bad_index) == (False, 4), result.describe()


def test_swapped_indexes_are_named(sealed, verifier):
    a, b = _entry_at(sealed, 2), _entry_at(sealed, 6)
    swapped = [(2, b.transaction_id, b.leaf_hash), (6, a.transaction_id, a.leaf_hash)]
    sealed.execute(sa.delete(Entry).where(Entry.idx.in_([2, 6])))
    sealed.add_all(Entry(idx=i, transaction_id=t, leaf_hash=h) for i, t, h in swapped)
    sealed.flush()
    result = audit.verify_database(sealed, [verifier])
    assert (result.ok, result.first_bad_index) == (False, 2), result.describe()


def test_truncated_log_is_detected(sealed, verifier):
    _delete_tx(sealed, _tx_at(sealed, 7).id)
    result = audit.verify_database(sealed, [verifier])
    assert (result.ok, result.first_bad_index) == (False, 7), result.describe()


def test_checkpoint_resigned_with_an_unknown_key_is_refused(sealed, verifier):
    rogue = Signer.generate("test.example/ledger")
    cp = sealed.scalar(sa.select(Checkpoint).where(Checkpoint.size == 6))
    forged = sign_checkpoint(CheckpointBody("test.example/ledger", 6, cp.root), [rogue])
    sealed.execute(sa.update(Checkpoint).where(Checkpoint.id == cp.id).values(note=forged))
    result = audit.verify_database(sealed, [verifier])
    assert not result.ok
    assert result.first_bad_index == 5, result.describe()


def test_tampered_balance_is_detected(sealed, verifier):
    sealed.execute(
        sa.text("UPDATE ledger_accounts SET balance = balance + 1 WHERE code = 'payouts:clearing'")
    )
    result = audit.verify_database(sealed, [verifier])
    assert not result.ok
    assert "payouts:clearing" in result.problem


def test_export_stops_at_the_latest_checkpoint_and_the_tail_is_still_audited(
    book, make_spec, signer, verifier
):
    post_n(book, make_spec, 3)
    sequencer.sequence(book)
    sequencer.checkpoint(book, signer, "test.example/ledger")
    post_n(book, make_spec, 2, start=3)
    sequencer.sequence(book)  # sequenced, not yet signed
    lines = list(entries.export_lines(book))
    assert [line.count('"type":"entry"') for line in lines].count(1) == 3
    assert verify_export(lines, [verifier]).ok
    assert audit.verify_database(book, [verifier]).ok
    book.execute(sa.update(Transaction).where(Transaction.id == _tx_at(book, 4).id).values(memo="edited"))
    result = audit.verify_database(book, [verifier])
    assert (result.ok, result.first_bad_index) == (False, 4), result.describe()
