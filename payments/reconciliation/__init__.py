"""Reconciliation of bank statements against ledger entries."""
