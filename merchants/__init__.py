"""Merchant registry, VietQR issuance, payment intents and bank notification matching."""
