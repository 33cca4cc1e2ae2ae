"""Reconciliation of bank statements against ledger entries.

The pure core, usable without a database, Flask or a queue:

* :mod:`.statements`: the statement model and its CSV, camt.053 and MT940 importers;
* :mod:`.domain`: ledger items, categories, matches and the balance check;
* :mod:`.references`: finding references in noisy bank text;
* :mod:`.matching`: the engine, :func:`payments.reconciliation.matching.reconcile`;
* :mod:`.errors`: the error tree, answered by the API as problem+json 422s.
"""
