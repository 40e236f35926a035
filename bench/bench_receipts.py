"""Receipt verification rate and receipt size against ledger length; prints one JSON object.

Run: ``python bench/bench_receipts.py`` (about half a minute; ``--quick`` stops at 1e5
leaves). For each ledger length the tree is built from leaf hashes, a signature
is made over its root and receipts (JSON and COSE) are issued for the middle
and last transactions. Verification rates (parse + verify, one core) are
measured on the largest ledger, best of several bounded rounds.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable

from charter.crypto import P256PrivateKey, self_signed_certificate
from charter.ledger.issue import issue_cose_receipt, issue_json_receipt
from charter.ledger.merkle import GENESIS_LEAF, MerkleTree, commit_evidence
from charter.ledger.receipts import LeafComponents
from charter.ledger.signatures import sign_signed_root
from charter.ledger.trust import NodeCert, TrustedNodes
from charter.ledger.verify import verify_receipt

VIEW = 2


def components(seqno: int) -> LeafComponents:
    seed = seqno.to_bytes(8, "big")
    return LeafComponents(
        hashlib.sha256(b"ws" + seed).digest(),
        commit_evidence(VIEW, seqno, hashlib.sha256(b"nonce" + seed).digest()),
    )


def rate(fn: Callable[[], object], rounds: int = 3, min_time: float = 0.3) -> float:
    best = 0.0
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    lengths = [1_000, 10_000, 100_000] + ([] if quick else [1_000_000])
    key = P256PrivateKey.generate()
    cert = self_signed_certificate(key, common_name="bench node")
    trusted = TrustedNodes([NodeCert.from_x509(cert.x509)])
    sizes = []
    tree = MerkleTree([GENESIS_LEAF])
    json_raw = cose_raw = b""
    for length in lengths:
        start = time.perf_counter()
        for seqno in range(len(tree), length + 1):
            tree.append(components(seqno).leaf())
        build_s = time.perf_counter() - start
        signed = sign_signed_root(
            key, cert, view=VIEW, seqno=length + 1, root=tree.root(), iat=int(time.time())
        )
        row: dict[str, object] = {"ledger_length": length, "append_leaves_s": round(build_s, 3)}
        for name, seqno in (("middle", length // 2), ("last", length)):
            lc = components(seqno)
            t0 = time.perf_counter()
            receipt = issue_json_receipt(tree, seqno, lc, signed)
            issue_us = (time.perf_counter() - t0) * 1e6
            json_raw = receipt.dumps().encode()
            cose_raw = issue_cose_receipt(tree, seqno, lc, signed)
            row[name] = {
                "proof_elements": len(receipt.proof),
                "json_bytes": len(json_raw),
                "json_bytes_without_cert": len(json_raw) - len(receipt.cert.pem()),
                "cose_bytes": len(cose_raw),
                "issue_us": round(issue_us, 1),
            }
        sizes.append(row)
    verify_receipt(json_raw, trusted)
    verify_receipt(cose_raw, trusted)
    result = {
        "benchmark": "receipts",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "largest_ledger": lengths[-1],
        "verify_json_per_s": round(rate(lambda: verify_receipt(json_raw, trusted))),
        "verify_cose_per_s": round(rate(lambda: verify_receipt(cose_raw, trusted))),
        "leaf_hash_and_append_per_s": round(
            lengths[-1] / sum(float(str(r["append_leaves_s"])) for r in sizes)
        ),
        "sizes": sizes,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
