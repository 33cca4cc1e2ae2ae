"""Bank rails: the payout seam, the payOS adapter, bank-notification formats, the simulator.

What other packages use:

* :mod:`payments.rails.webhooks` (pure): ``sign_*``/``verify_*``/``parse_*`` for the chopay,
  SePay and payOS notification formats; every failure is a ``WebhookError`` with a stable
  ``code``. The notification intake verifies with it; the simulator signs with it.
* :mod:`payments.rails.base`: the ``Rail`` protocol (``send``, ``status``, ``balance``,
  ``lookup``), ``TransferRequest``/``TransferResult`` and the ``Outcome``/``Reason`` codes;
  :mod:`payments.rails.errors`: the exception tree of calls that fail as a whole.
* :mod:`payments.rails.payos`: ``PayosRail.from_settings(settings)``, the first ``Rail``.
* :mod:`payments.rails.fakebank`: the bank simulator (``chopay fakebank``), and
  :class:`payments.rails.fakebank.process.Simulator` to run one from tests and benchmarks.

Nothing here imports ``merchants`` or ``disbursement``.
"""
