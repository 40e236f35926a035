"""The node: how one Charter node's layers are wired to its peers.

- ``raft_wire``: the strict Syrup encoding of consensus messages (packed entry runs;
  hostile input raises ``RaftWireError``, code ``node.raft_wire``);
- ``raft_transport``: Raft traffic as batches delivered to a raft gate each node exports
  on its OCapN runtime; inbox facets are bound to the authenticated peer of a session;
- ``raft_member``: a ``RaftDriver`` and its ``RaftTransport`` run side by side;
- ``ledger_service``: Raft over OCapN feeding the ledger engine: batched, signed writes,
  forwarding to the leader through ``ledger_submit``, signature transactions, reads;
- ``ledger_local``: a whole network in one process (demo and tests);
- ``network`` / ``config``: the shared network file and each node's private config;
- ``process``: one node process (``charter node run``) assembled from its config;
- ``supervisor``: starting, stopping and watching node processes (``charter stack``).
"""
