"""Bank rail clients and the bank simulator."""
