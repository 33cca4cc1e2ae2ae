"""``/v1/ledger``: the signed log for auditors, and manual journal entries for admins."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from chopay import auth, db
from chopay.errors import NotFound
from chopay.idempotency import HEADER, OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, page, page_schema
from payments.ledger import domain, entries, group, keys, schemas, services, tree
from payments.ledger.domain import Posting, Recorded, TransactionSpec

blp = Blueprint(
    "ledger",
    __name__,
    url_prefix="/v1/ledger",
    description="The double-entry book, its signed Merkle log, proofs and exports.",
)

READERS = ("auditor", "admin")
AccountPage = page_schema(schemas.AccountOut, "AccountPage")
CheckpointList = page_schema(schemas.CheckpointOut, "CheckpointList")


def _request_key(prefix: str) -> str:
    """Return the ledger idempotency key of this request (the header's, scoped to the user).

    A key that would not fit the book's limit, with its prefix, is replaced by its digest.
    """
    client_key = (request.headers.get(HEADER) or uuid.uuid4().hex).strip()
    key = f"{prefix}:{auth.current_user().id}:{client_key}"
    if len(key) > domain.MAX_KEY or not domain.KEY.fullmatch(key):
        key = f"{prefix}:{auth.current_user().id}:sha256:{hashlib.sha256(client_key.encode()).hexdigest()}"
    return key


@blp.route("/checkpoint")
@auth.roles(*READERS)
@blp.response(200, {"type": "string"}, content_type="text/plain")
def latest_checkpoint() -> Response:
    """Get the latest signed checkpoint as a C2SP signed note."""
    cp = tree.latest_checkpoint(db.session())
    if cp is None:
        raise NotFound("No checkpoint has been signed yet.", code="checkpoint_not_found")
    return Response(cp.note, mimetype="text/plain")


@blp.route("/checkpoints")
@auth.roles(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, CheckpointList)
def checkpoints(args: dict[str, Any]) -> dict[str, Any]:
    """List signed checkpoints in increasing tree size."""
    found = tree.list_checkpoints(db.session(), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1)
    return page(found, args["limit"], key="size")


@blp.route("/entries")
@auth.roles(*READERS)
@blp.arguments(schemas.EntryArgs, location="query")
@blp.response(200, schemas.EntryPage)
def list_entries(args: dict[str, Any]) -> dict[str, Any]:
    """List log entries (leaves) from an index; page on with ``from_index=next_from_index``."""
    found = entries.entries(db.session(), from_index=args["from_index"], limit=args["limit"] + 1)
    more = len(found) > args["limit"]
    shown = found[: args["limit"]]
    return {"items": shown, "next_from_index": shown[-1].index + 1 if more else None}


@blp.route("/entries/<id:index>")
@auth.roles(*READERS)
@blp.arguments(schemas.ProofArgs, location="query")
@blp.response(200, schemas.InclusionOut)
def entry(args: dict[str, Any], index: int) -> dict[str, Any]:
    """Get one entry with its inclusion proof in a signed tree."""
    return tree.inclusion(db.session(), index, args["tree_size"])


@blp.route("/consistency")
@auth.roles(*READERS)
@blp.arguments(schemas.ConsistencyArgs, location="query")
@blp.response(200, schemas.ConsistencyOut)
def consistency(args: dict[str, Any]) -> dict[str, Any]:
    """Prove that the tree of size ``second`` extends the tree of size ``first``."""
    return tree.consistency(db.session(), args["first"], args["second"])


@blp.route("/accounts")
class Accounts(MethodView):
    @auth.roles(*READERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, AccountPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List accounts with their current balances."""
        found = services.list_accounts(
            db.session(), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
        )
        return page(found, args["limit"])

    @auth.roles("admin")
    @blp.arguments(schemas.AccountIn)
    @blp.response(201, schemas.AccountOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Open an account."""
        return services.create_account(db.session(), **data)


@blp.route("/accounts/<account:code>/balance")
@auth.roles(*READERS)
@blp.arguments(schemas.BalanceArgs, location="query")
@blp.response(200, schemas.BalanceOut)
def balance(args: dict[str, Any], code: str) -> dict[str, Any]:
    """Get an account's balance now, at an instant, or at a log tree size."""
    at = args["at"]
    amount = services.balance(db.session(), code, at)
    return {"account": code, "balance": amount, "at": None if at is None else str(at)}


@blp.route("/transactions", methods=["POST"])
@auth.roles("admin")
@idempotent
@blp.arguments(schemas.TransactionIn)
@blp.response(201, schemas.TransactionOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def post_transaction(data: dict[str, Any]) -> Recorded:
    """Post a manual journal entry (opening balances, corrections)."""
    # Without an Idempotency-Key nothing else of the request is written: the entry commits on
    # its own, together with concurrent ones (group commit). With one, the stored answer and
    # the entry share the request's unit of work.
    spec = TransactionSpec(
        idempotency_key=_request_key("manual"),
        kind=data["kind"],
        memo=data["memo"],
        postings=[Posting(p["account"], p["amount"]) for p in data["postings"]],
        occurred_at=data["occurred_at"],
        metadata=data["metadata"],
    )
    if db.has_open_work():
        return services.post(db.session(), spec)
    return group.post_alone(db.get_db(), spec)


@blp.route("/transactions/<ref:tx_id>")
@auth.roles(*READERS)
@blp.response(200, schemas.TransactionOut)
def get_transaction(tx_id: str) -> Recorded:
    """Get a transaction by its public id."""
    return services.get_transaction(db.session(), tx_id)


@blp.route("/transactions/<ref:tx_id>/reverse", methods=["POST"])
@auth.roles("admin")
@idempotent
@blp.arguments(schemas.ReversalIn)
@blp.response(201, schemas.TransactionOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def reverse(data: dict[str, Any], tx_id: str) -> Recorded:
    """Reverse a transaction with its mirror entry; a transaction is reversed at most once."""
    return services.reverse(db.session(), tx_id, key=_request_key("reversal"), reason=data["reason"])


@blp.route("/export")
@auth.roles(*READERS)
@blp.arguments(schemas.EntryArgs(only=("from_index",)), location="query")
@blp.response(200, {"type": "string"}, content_type="application/jsonl")
def export(args: dict[str, Any]) -> Response:
    """Stream the log as JSON Lines: entries, with each checkpoint after the entry completing it."""
    database = db.get_db()

    def generate() -> Any:
        with database.read_session() as s:
            yield from entries.export_lines(s, from_index=args["from_index"])

    return Response(
        stream_with_context(generate()),
        mimetype="application/jsonl",
        headers={"Content-Disposition": "attachment; filename=chopay-ledger.jsonl"},
    )


@blp.route("/verifier-key")
@auth.roles(*READERS)
@blp.response(200, schemas.VerifierKeysOut)
def verifier_key() -> dict[str, Any]:
    """Get the verifier keys that check checkpoint signatures (C2SP vkey format)."""
    settings = current_app.config["CHOPAY"]
    return {
        "origin": settings.ledger_origin,
        "keys": [v.vkey for v in keys.trusted_verifiers(settings)],
    }
