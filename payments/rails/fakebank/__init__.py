"""The bank simulator (``chopay fakebank``): a separate process that behaves like a bank.

It speaks the payOS Payouts API v1 so that the unmodified ``payos`` SDK (and so chopay's
payout rail) works against it (:mod:`.protocol`, :mod:`.payouts`, :mod:`.app`), holds
accounts in documented, deterministic states (:mod:`.accounts`), moves money
(:mod:`.transfers`), takes incoming payments and notifies chopay in the chopay, SePay or
payOS format until acknowledged (:mod:`.incoming`, :mod:`.notify`), exports statements
as CSV, camt.053 and MT940 (:mod:`.statements`), and offers admin endpoints for tests
(:mod:`.admin`). It keeps its own SQLite database (:mod:`.models`) and is served by
gunicorn (:mod:`.server`).
"""
