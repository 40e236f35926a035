"""The ledger: durable log, Merkle tree, signatures, receipts and state.

- ``framing``: sans-I/O record frames ``[u32 length][u32 crc32c][payload]`` and the scanner.
- ``segments``: append-only segment files with group commit, recovery and sealing.
- ``merkle``: the CCF-shaped SHA-256 history tree, its leaves, paths, flush and frontier.
- ``signatures``: when a signature transaction is due, and the signed-root record.
- ``snapshots``: when a snapshot is due, and the evidence record of its digest.
- ``receipts`` / ``cose_receipts``: CCF's JSON and COSE receipt forms, build and verify.
- ``trust``: the node certificates a verifier trusts; ``verify``: either form from bytes.
- ``issue``: receipts for a transaction from the tree and the signature covering it.
- ``raft_storage`` / ``hardstate``: Raft's durable state (entries on segments, an atomically
  replaced state file, snapshot files), with ``MemoryStorage``'s interface.
- ``engine``: the deterministic state machine over the committed log: signed batches,
  key-value tables, statuses, signature checks and divergence alarms.
"""
