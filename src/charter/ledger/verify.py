"""Receipts of either form from bytes: detect, parse, verify."""

from __future__ import annotations

from charter.ledger.cose_receipts import COSE_SIGN1_TAG, CoseReceipt, parse_cose_receipt
from charter.ledger.errors import ReceiptFormatError
from charter.ledger.receipts import JsonReceipt, VerifiedReceipt, parse_json_receipt
from charter.ledger.trust import TrustedNodes

_COSE_FIRST_BYTE = 0xC0 | COSE_SIGN1_TAG  # CBOR major type 6, tag 18 inline


def load_receipt(data: bytes) -> JsonReceipt | CoseReceipt:
    """A JSON receipt if the bytes start with ``{``, a COSE one if with tag 18."""
    head = data.lstrip()
    if head.startswith(b"{"):
        return parse_json_receipt(data)
    if data[:1] == bytes([_COSE_FIRST_BYTE]):
        return parse_cose_receipt(data)
    raise ReceiptFormatError("neither a JSON receipt nor a COSE_Sign1 receipt")


def verify_receipt(data: bytes, trusted: TrustedNodes) -> VerifiedReceipt:
    return load_receipt(data).verify(trusted)
