"""Migration 0012: what a sender said of a failed payment is kept; up and down keep every row."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from chopay import migrate


def _move(conn: Connection, direction: str, revision: str) -> None:
    getattr(command, direction)(migrate.alembic_config("unused://", connection=conn), revision)


def _notification(conn: Connection, key: str, status: str) -> int:
    row = conn.execute(
        sa.text(
            "INSERT INTO bank_notifications (connector, format, dedup_key, content_sha256, status, direction,"
            " bank_txn_id, bin, account_number, account_index, account_last4, amount, description, body,"
            " occurred_at, received_at) VALUES ('payos-a', 'payos', :key, :hash, :status, 'in', :key,"
            " '970436', 'd1:x', :hash, '0001', 50000, 'thanh toan', 'd1:y', :at, :at) RETURNING id"
        ),
        {"key": key, "hash": "0" * 64, "status": status, "at": "2026-12-01 02:30:00+00:00"},
    ).scalar_one()
    return int(row)


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns("bank_notifications")}


def test_0012_adds_the_sender_status_and_takes_it_away_keeping_every_row(
    empty_connection: Connection,
) -> None:
    _move(empty_connection, "upgrade", "0009")
    first = _notification(empty_connection, "FT1", "recorded")
    empty_connection.execute(
        sa.text(
            "INSERT INTO bank_notification_conflicts (notification_id, content_sha256, body, received_at)"
            " VALUES (:n, :h, 'd1:z', '2026-12-01 02:31:00+00:00')"
        ),
        {"n": first, "h": "1" * 64},
    )
    assert "sender_status" not in _columns(empty_connection)

    _move(empty_connection, "upgrade", "0012")
    second = _notification(empty_connection, "FT2", "ignored")
    empty_connection.execute(
        sa.text("UPDATE bank_notifications SET sender_status = :s WHERE id = :id"),
        {"s": "01 Giao dịch thất bại", "id": second},
    )
    rows = empty_connection.execute(
        sa.text("SELECT dedup_key, sender_status FROM bank_notifications ORDER BY id")
    )
    assert [tuple(r) for r in rows] == [("FT1", None), ("FT2", "01 Giao dịch thất bại")]

    _move(empty_connection, "downgrade", "0009")
    assert "sender_status" not in _columns(empty_connection)
    keys = empty_connection.execute(sa.text("SELECT dedup_key FROM bank_notifications ORDER BY id")).scalars()
    assert list(keys) == ["FT1", "FT2"]
    assert (
        empty_connection.execute(sa.text("SELECT count(*) FROM bank_notification_conflicts")).scalar_one()
        == 1
    )
    _move(empty_connection, "upgrade", "head")
    assert "sender_status" in _columns(empty_connection)
