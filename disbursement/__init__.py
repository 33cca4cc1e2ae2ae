"""Benefit disbursement: programs, the beneficiary registry, and payout batches."""
