"""Benefit programs, beneficiaries, payout batches and the jobs that execute them."""
