"""Use cases of merchants; each takes a session, flushes, and never commits.

* ``registry``: merchants, their status history, lookups by account and visibility;
* ``imports``: the merchant file import (CSV or XLSX);
* ``intents``: payment intents (dynamic QR), their settlement and expiry;
* ``codes``: the static QR of a merchant and the genuine-code check.
"""
