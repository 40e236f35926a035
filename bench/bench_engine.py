"""Ledger engine apply rate: transactions per second through ``Engine.apply``.

Run: ``python bench/bench_engine.py`` (about half a minute; ``--quick`` for a smaller
log). For each batch size (1, 10, 100, 1000 transactions per signed batch, three
submitters, one 100-byte write per transaction) a committed log is built once, with a
signature transaction every 5,000 transactions as CCF's default policy places them,
then a fresh engine applies it in runs of 64 Raft entries, best of three rounds.
Each batch's Ed25519 signature is verified once; hashing is per transaction. One
JSON object is printed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from charter.consensus.types import Entry
from charter.crypto import Ed25519PrivateKey, P256PrivateKey, self_signed_certificate
from charter.ledger.engine import Engine, Transaction, Write, sign_batch
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert, TrustedNodes

BATCH_SIZES = (1, 10, 100, 1000)
VALUE_SIZE = 100
RUN = 64  # Raft entries per apply call
SIGN_EVERY = 5000
NOW_MS = 1_700_000_000_000


def build_log(
    members: dict[str, Ed25519PrivateKey],
    engine: Engine,
    key: P256PrivateKey,
    cert: object,
    *,
    batch_size: int,
    total: int,
) -> list[Entry]:
    entries: list[Entry] = []
    value = os.urandom(VALUE_SIZE)
    names = list(members)
    seq = dict.fromkeys(names, 0)
    unsigned = 0
    n = 0
    while n < total:
        who = names[len(entries) % len(names)]
        txs = [
            Transaction.of([Write("bench", f"k{(n + i) % 50_000}", value)])
            for i in range(batch_size)
        ]
        data = sign_batch(members[who], who, seq[who], txs)
        seq[who] += 1
        entries.append(Entry(1, len(entries) + 1, data=data))
        engine.apply(entries[-1:])
        n += batch_size
        unsigned += batch_size
        if unsigned >= SIGN_EVERY:
            sig = engine.make_signature(1, key, cert, NOW_MS)  # type: ignore[arg-type]
            entries.append(Entry(1, len(entries) + 1, data=sig))
            engine.apply(entries[-1:])
            unsigned = 0
    return entries


def main() -> None:
    quick = "--quick" in sys.argv
    total = 5_000 if quick else 20_000
    rounds = 1 if quick else 3
    members = {f"node-{i}": Ed25519PrivateKey.generate() for i in (1, 2, 3)}
    key = P256PrivateKey.generate()
    cert = self_signed_certificate(key, common_name="bench ledger node")
    trusted = TrustedNodes([NodeCert.from_x509(cert.x509)])

    def engine() -> Engine:
        return Engine(
            network_secret=b"bench-network-secret",
            node_keys={who: k.public_key for who, k in members.items()},
            trusted=trusted,
            signature_policy=SignaturePolicy(every_tx=SIGN_EVERY),
        )

    results = []
    for batch_size in BATCH_SIZES:
        reference = engine()
        entries = build_log(members, reference, key, cert, batch_size=batch_size, total=total)
        elapsed = float("inf")
        for _ in range(rounds):  # best of a few: the machine is shared
            target = engine()
            start = time.perf_counter()
            committed = 0
            for i in range(0, len(entries), RUN):
                committed += len(target.apply(entries[i : i + RUN]).committed)
            elapsed = min(elapsed, time.perf_counter() - start)
            assert target.root() == reference.root(), "engines disagree"
        txs = target.last_seqno
        results.append(
            {
                "batch_size": batch_size,
                "transactions": txs,
                "entries": len(entries),
                "seconds": round(elapsed, 3),
                "tx_per_s": round(txs / elapsed),
                "us_per_tx": round(elapsed / txs * 1e6, 2),
                "committed": committed,
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "ledger_engine_apply",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "value_bytes": VALUE_SIZE,
                "entries_per_apply": RUN,
                "signature_every_tx": SIGN_EVERY,
                "rounds_best_of": rounds,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
