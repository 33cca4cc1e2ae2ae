"""Money core: the double-entry ledger, bank rails and reconciliation."""
