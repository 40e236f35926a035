"""The node: how one Charter node's layers are wired to its peers.

- ``raft_wire``: the strict Syrup encoding of consensus messages;
- ``raft_transport``: Raft traffic as batches sent to a raft inbox capability each node
  exports on its OCapN runtime, bound to the authenticated peer of each session.
"""
