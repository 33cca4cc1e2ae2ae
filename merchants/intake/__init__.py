"""Bank-notification intake: connectors, the three formats, matching, payments and their events.

A bank, or a bank-feed service a vendor already uses (SePay, payOS), tells chopay that money
arrived in a vendor's account. The intake verifies the notification with the connector's live
secrets (:mod:`payments.rails.webhooks`), records it exactly once per (connector, bank
transaction id), matches it to an open payment intent by the reference in its description or
to the merchant owning the account, and records the payment and its ledger posting in one
database transaction. Once that commits, the merchant's live event stream hears of it.

Modules: :mod:`.models` (tables), :mod:`.connectors` (credentials), :mod:`.formats` (one parser
per format, to one :class:`~.formats.Incoming`), :mod:`.matching` (references in bank text),
:mod:`.services` (record, assign), :mod:`.ledger` (the chart of accounts and postings),
:mod:`.events` (live events and the SSE stream), :mod:`.statements` (payments, statements,
market figures), :mod:`.api`, :mod:`.schemas` and :mod:`.cli`.
"""
