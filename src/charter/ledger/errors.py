"""Typed errors of the ledger; each carries a stable ``code``."""

from __future__ import annotations

from pathlib import Path

from charter.errors import CharterError


class LedgerError(CharterError):
    """Base of every ledger storage, tree, signature and receipt error."""

    code = "ledger.error"


class LedgerCorruptionError(LedgerError):
    """Stored bytes that fail their checksum or framing: the node must stop, never skip."""

    code = "ledger.corrupt"

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        super().__init__(f"{path} at byte {offset}: {reason}")
        self.path = Path(path)
        self.offset = offset
        self.reason = reason


class LedgerIndexError(LedgerError):
    """An index outside the entries the log or tree currently holds."""

    code = "ledger.index"


class LedgerStateError(LedgerError):
    """An operation that would break an invariant, e.g. truncating committed entries."""

    code = "ledger.state"


class ReceiptError(LedgerError):
    """A receipt that is malformed or does not verify."""

    code = "ledger.receipt.invalid"


class ReceiptFormatError(ReceiptError):
    """A receipt that cannot be parsed as either receipt form."""

    code = "ledger.receipt.format"


class ReceiptSignatureError(ReceiptError):
    """A well-formed receipt whose signature does not cover the root its proof yields."""

    code = "ledger.receipt.signature"


class UntrustedSignerError(ReceiptError):
    """A receipt signed by a key that is not among the trusted node certificates."""

    code = "ledger.receipt.untrusted"


class SignedRootError(LedgerError):
    """A signed-root record that is malformed or whose signatures do not verify."""

    code = "ledger.signed_root.invalid"
