"""Issuing receipts: a transaction's leaf, the tree, and the signature that covers it."""

from __future__ import annotations

from charter.ledger.cose_receipts import build_cose_receipt
from charter.ledger.errors import LedgerStateError
from charter.ledger.merkle import MerkleTree, PathStep, fold_path
from charter.ledger.receipts import JsonReceipt, LeafComponents, build_json_receipt
from charter.ledger.signatures import SignedRoot


def receipt_path(
    tree: MerkleTree, seqno: int, components: LeafComponents, signed: SignedRoot
) -> list[PathStep]:
    """The proof for transaction ``seqno`` up to the root ``signed`` covers, checked."""
    if not 1 <= seqno < signed.tree_size:
        raise LedgerStateError(
            f"transaction {seqno} is not covered by the signature at {signed.seqno}"
        )
    if components.seqno != seqno:
        raise LedgerStateError(f"leaf components are for {components.seqno}, not {seqno}")
    leaf = components.leaf()
    if tree.leaf(seqno) != leaf:
        raise LedgerStateError(f"leaf components do not match the tree's leaf {seqno}")
    path = tree.path(seqno, signed.tree_size)
    if fold_path(leaf, path) != signed.root:
        raise LedgerStateError(f"the tree's root at {signed.tree_size} is not the signed root")
    return path


def issue_json_receipt(
    tree: MerkleTree, seqno: int, components: LeafComponents, signed: SignedRoot
) -> JsonReceipt:
    path = receipt_path(tree, seqno, components, signed)
    return build_json_receipt(
        cert=signed.node_cert(), signature=signed.signature, proof=path, components=components
    )


def issue_cose_receipt(
    tree: MerkleTree, seqno: int, components: LeafComponents, signed: SignedRoot
) -> bytes:
    path = receipt_path(tree, seqno, components, signed)
    return build_cose_receipt(signed.cose_signature, components, path)
