"""Double-entry book sealed by an RFC 9162 Merkle log with signed checkpoints."""
