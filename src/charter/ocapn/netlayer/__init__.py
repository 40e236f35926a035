"""Netlayers: how CapTP bytes travel between two peers.

* ``base``: the contract (``Connection``, ``Netlayer``, errors);
* ``memory``: in-process pairs and a switchboard routing dials by designator;
* ``stream``: the asyncio protocol and accept loop shared by the socket netlayers;
* ``unix``: Unix domain sockets, reached by path;
* ``tcp_testing``: ``tcp-testing-only``, plain TCP on loopback for conformance runs;
* ``tls``: TCP + TLS 1.3 with mutually pinned Ed25519 keys (designator = the key).

Submodules are imported explicitly so that using one netlayer does not load the
others' dependencies (``tls`` needs pyOpenSSL).
"""
