"""The ledger: durable log, Merkle tree, signatures, receipts and state."""
