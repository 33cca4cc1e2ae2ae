"""``chopay users``: create, list and revoke API users."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from chopay.cli.keys import write_secret
from chopay.config import Settings, from_env
from chopay.errors import ChopayError
from chopay.users import Role, create_user, ensure_admin, list_users, revoke_user


@contextmanager
def open_session(settings: Settings | None = None) -> Iterator[Session]:
    """Open the command's unit of work on the configured database; turn domain errors into messages.

    It commits once when the command's block ends, and writes nothing if the block fails.
    """
    import chopay.models  # noqa: F401  (every table, so that the ORM can resolve relationships)
    from chopay.db import Database

    database = Database((settings or from_env()).database_url)
    try:
        with database.unit_of_work() as s:
            yield s
    except ChopayError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        database.engine.dispose()


def write_admin_token(settings: Settings, name: str = "admin") -> str:
    """Create the first admin if none exists and store its token in ``var/admin-token``."""
    token_file = settings.data_dir / "admin-token"
    with open_session(settings) as s:
        issued = ensure_admin(s, name)
    if issued is None:
        return f"admin user: exists (token in {token_file})" if token_file.exists() else "admin user: exists"
    if token_file.exists():
        token_file.unlink()
    write_secret(token_file, issued.token + "\n")
    return f"admin user: created, token written to {token_file} (mode 0600)"


@click.group()
def users() -> None:
    """Manage API users and their tokens."""


@users.command()
@click.option("--name", required=True, help="Who the token is for.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="The user's role.")
@click.option("--merchant", "merchant_id", type=int, help="Merchant id (required for the merchant role).")
def create(name: str, role: str, merchant_id: int | None) -> None:
    """Create a user and print its token once; it cannot be shown again."""
    with open_session() as s:
        issued = create_user(s, name=name, role=role, merchant_id=merchant_id)
    click.echo(f"created user {issued.user.id} ({issued.user.role})")
    click.echo(issued.token)


@users.command("list")
def list_() -> None:
    """List users with their role and state; tokens are never shown."""
    with open_session() as s:
        found = list_users(s, limit=10_000)
    click.echo(f"{'ID':>5}  {'ROLE':<9} {'MERCHANT':>8}  {'TOKEN':<11} {'STATE':<8} NAME")
    for u in found:
        state = "active" if u.active else "revoked"
        merchant = str(u.merchant_id) if u.merchant_id is not None else "-"
        click.echo(f"{u.id:>5}  {u.role:<9} {merchant:>8}  {u.token_hint + '...':<11} {state:<8} {u.name}")


@users.command()
@click.argument("user_id", type=int)
def revoke(user_id: int) -> None:
    """Revoke a user's token; requests with it fail from now on."""
    with open_session() as s:
        revoke_user(s, user_id)
    click.echo(f"revoked user {user_id}")
