"""Use cases of disbursement; each takes a session, flushes, and never commits.

* ``programs``: programs, their budget in the ledger, funding, enrolments;
* ``registry``: beneficiaries, their history and lookups through blind indexes;
* ``imports``: the beneficiary file import;
* ``batches``: batch upload, reading, approval and rejection;
* ``validation``: the row checks of a batch, a chunk at a time (run by ``disbursement.jobs``);
* ``reports``: counts and amounts per status, error code and ward; items and errors lists.
"""
