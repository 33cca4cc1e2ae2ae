"""The ``chopay`` command.

Each command group lives in its own module and is registered here; groups that need the
application build it lazily, so ``chopay qr`` and ``chopay ledger verify`` start without a
database.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run and administer the chopay payment service."""


def _register() -> None:
    """Attach every command group to ``main``."""
    from chopay.cli import demo, keys, ledger, qr, service, users
    from merchants.intake.cli import connectors, events
    from payments.rails.fakebank.cli import fakebank
    from payments.reconciliation.cli import reconcile

    for command in (
        service.serve,
        service.worker,
        service.init,
        service.db,
        users.users,
        keys.keys,
        ledger.ledger,
        qr.qr,
        fakebank,
        reconcile,
        connectors,
        events,
        demo.demo,
    ):
        main.add_command(command)


_register()
