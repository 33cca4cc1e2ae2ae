"""``/v1/users``: API users and their tokens."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from chopay import auth, db, users
from chopay.db import MAX_ID
from chopay.idempotency import OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("users", __name__, url_prefix="/v1/users", description="API users, roles and tokens.")


class UserIn(ma.Schema):
    """A new user: a merchant user names its merchant, and no other role does."""

    name = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(min=1, max=users.NAME_MAX),
            ma.validate.Regexp(
                users.NAME_PATTERN, error="A name is text with a letter, without control characters."
            ),
        ],
    )
    role = ma.fields.String(required=True, validate=ma.validate.OneOf([r.value for r in users.Role]))
    # strict: 1.5 is refused, not truncated to 1; the range keeps the id bindable as a BIGINT.
    merchant_id = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID)
    )

    # Enforced by users.create_user (merchant_required, merchant_not_allowed); stated here.
    OPENAPI_RULES = {
        "oneOf": [
            {
                "required": ["merchant_id"],
                "properties": {
                    "role": {"enum": [users.Role.MERCHANT.value]},
                    "merchant_id": {"type": "integer"},
                },
            },
            {
                "properties": {
                    "role": {"enum": [r.value for r in users.Role if r != users.Role.MERCHANT]},
                    "merchant_id": {"enum": [None]},
                }
            },
        ]
    }


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()
    merchant_id = ma.fields.Integer(allow_none=True)
    token_hint = ma.fields.String(metadata={"description": "First characters of the token"})
    created_at = ma.fields.DateTime()
    revoked_at = ma.fields.DateTime(allow_none=True)
    active = ma.fields.Boolean()


class IssuedUserSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema)
    token = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The API token, shown only this once: null when the response is an "
            "Idempotency-Key replay (the token is never stored)."
        },
    )


UserPageSchema = page_schema(UserSchema, "UserPage")


@blp.route("")
class Users(MethodView):
    @auth.roles("admin")
    @idempotent(secrets=("token",))
    @blp.arguments(UserIn)
    @blp.response(201, IssuedUserSchema)
    @blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any]) -> users.IssuedUser:
        """Create a user and show its API token once."""
        return users.create_user(db.session(), created_by=auth.current_user().id, **data)

    @auth.roles("admin")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users, oldest first."""
        limit = args["limit"]
        found = users.list_users(db.session(), after=decode_cursor(args["cursor"]), limit=limit + 1)
        return page(found, limit)


@blp.route("/me")
@auth.roles(*auth.ANY_ROLE)
@blp.response(200, UserSchema)
def me() -> users.User:
    """Show the user the token belongs to."""
    return auth.current_user()


@blp.route("/<id:user_id>/revoke", methods=["POST"])
@auth.roles("admin")
@blp.response(200, UserSchema)
def revoke(user_id: int) -> users.User:
    """Revoke a user's token; it stops working at once. Nobody revokes their own."""
    return users.revoke_user(db.session(), user_id, by=auth.current_user().id)
