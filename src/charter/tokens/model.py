"""Token operations and ledger rows: their canonical Syrup bytes and their limits.

Every operation is one command body (``<pool ...>``, ``<mint ...>``, ...). Bodies are
records with a fixed number of fields so a node decodes one without guessing; the
Syrup decoder accepts only canonical bytes, so one operation has one body.

Ledger tables (all under ``charter.tokens.``, written only by the tokens handler):

- ``pools``: pool name -> ``<token-pool type decimals max-supply minters creator tx-id>``
- ``supply``: pool name -> ASCII ``"minted burned"`` (base units)
- ``balances``: ``pool|account`` -> ASCII decimal balance (rows at zero are removed)
- ``nfts``: ``pool|token-id`` -> ``<nft owner uri metadata-hash>``
- ``allowances``: ``pool|owner|operator`` -> ASCII decimal allowance, or ``*`` (all)
- ``transfers``: 16-digit seqno -> ``<token-transfer view kind pool from to amount token-id
  operator pin member batch-seq [batch-hash]>``, the history of every balance change (the
  batch hash only for an operation that carried a message)
- ``messages``: a carried message's pin (hex) -> the tx id that carried it (one use each)

A mint, burn or transfer may carry a message: its body then ends with the message batch's
pins record ``<charter-mp-pins batch-hash [pin] time-us>`` (``charter.multiparty.pins``), so
the transaction that moves the tokens is the one that orders the message.

Balances are plain ASCII decimals rather than Syrup: the transfer path reads and
writes two per operation and ``int(bytes)`` is the cheapest exact parse there is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.multiparty.errors import MalformedPins
from charter.multiparty.pins import PinCommand, parse_pin_record
from charter.tokens.errors import TokensError

APP: Final = "tokens"
PREFIX: Final = "charter.tokens."
T_POOLS: Final = "charter.tokens.pools"
T_SUPPLY: Final = "charter.tokens.supply"
T_BALANCES: Final = "charter.tokens.balances"
T_NFTS: Final = "charter.tokens.nfts"
T_ALLOWANCES: Final = "charter.tokens.allowances"
T_TRANSFERS: Final = "charter.tokens.transfers"
T_MESSAGES: Final = "charter.tokens.messages"
SEP: Final = "|"

MAX_DIGITS: Final = 512
"""Every amount, balance and supply is below 10**512 (exact integers, any size up to that)."""
MAX_AMOUNT: Final = 10**MAX_DIGITS - 1
MAX_DECIMALS: Final = 36
MAX_MINTERS: Final = 64
MAX_URI_BYTES: Final = 1024
PIN_BYTES: Final = 32
ALL: Final = b"*"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_TOKEN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")

L_POOL = Symbol("pool")
L_MINT = Symbol("mint")
L_BURN = Symbol("burn")
L_TRANSFER = Symbol("transfer")
L_APPROVE = Symbol("approve")
L_POOL_ROW = Symbol("token-pool")
L_NFT_ROW = Symbol("nft")
L_TRANSFER_ROW = Symbol("token-transfer")


class PoolType(StrEnum):
    FUNGIBLE = "fungible"
    NONFUNGIBLE = "nonfungible"


class MintPolicy(StrEnum):
    CREATOR = "creator"
    """Only the member who created the pool."""
    ANY = "any"
    """Any member of the network."""
    LISTED = "listed"
    """The members named in the pool's ``minters``."""


class TransferKind(StrEnum):
    MINT = "mint"
    BURN = "burn"
    TRANSFER = "transfer"


_KIND_SYMBOLS = {k: Symbol(k.value) for k in TransferKind}
_KINDS = {sym: k for k, sym in _KIND_SYMBOLS.items()}
_KIND_BYTES = {k: encode(sym) for k, sym in _KIND_SYMBOLS.items()}
_ROW_LABEL = b"<" + encode(L_TRANSFER_ROW)
_TRANSFER_LABEL = b"<" + encode(L_TRANSFER)


def _format_movement(
    pool: str, src: str, dst: str, amount: int, token_id: str, operator: str, pin: bytes
) -> bytes:
    """The Syrup of these seven fields in a row (``amount`` >= 0), as a transfer body and a
    history row both hold them."""
    p = pool.encode("utf-8")
    s = src.encode("utf-8")
    d = dst.encode("utf-8")
    t = token_id.encode("utf-8")
    o = operator.encode("utf-8")
    return b'%d"%s%d"%s%d"%s%d+%d"%s%d"%s%d:%s' % (
        len(p),
        p,
        len(s),
        s,
        len(d),
        d,
        amount,
        len(t),
        t,
        len(o),
        o,
        len(pin),
        pin,
    )


# -- names ------------------------------------------------------------------------------


def is_pool_name(name: object) -> bool:
    return type(name) is str and _NAME.fullmatch(name) is not None


def is_member_name(name: object) -> bool:
    return type(name) is str and _PART.fullmatch(name) is not None


def is_account(name: object) -> bool:
    """``member`` or ``member/user``."""
    if type(name) is not str:
        return False
    head, slash, tail = name.partition("/")
    return _PART.fullmatch(head) is not None and (not slash or _PART.fullmatch(tail) is not None)


def is_token_id(name: object) -> bool:
    return type(name) is str and _TOKEN_ID.fullmatch(name) is not None


def owns(member: str, account: str) -> bool:
    """Whether ``member`` owns ``account`` (its own, or one of its users')."""
    return bool(member) and (account == member or account.startswith(member + "/"))


def is_amount(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_AMOUNT


def parse_amount(text: str, what: str = "amount") -> int:
    """A decimal string of base units (what the API and CLI accept)."""
    if type(text) is not str or not text.isascii() or not text.isdigit():
        raise TokensError(f"{what} must be a decimal string of base units, got {text!r:.40}")
    if len(text) > MAX_DIGITS:
        raise TokensError(f"{what} has more than {MAX_DIGITS} digits")
    return int(text)


def balance_key(pool: str, account: str) -> str:
    return f"{pool}{SEP}{account}"


def nft_key(pool: str, token_id: str) -> str:
    return f"{pool}{SEP}{token_id}"


def allowance_key(pool: str, owner: str, operator: str) -> str:
    return f"{pool}{SEP}{owner}{SEP}{operator}"


def transfer_key(seqno: int) -> str:
    return f"{seqno:016d}"


# -- operations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatePool:
    name: str
    type: PoolType
    decimals: int = 0
    max_supply: int | None = None
    mint_policy: MintPolicy = MintPolicy.CREATOR
    minters: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return encode(
            Record(
                L_POOL,
                self.name,
                Symbol(self.type.value),
                self.decimals,
                False if self.max_supply is None else self.max_supply,
                Symbol(self.mint_policy.value),
                list(self.minters),
            )
        )


@dataclass(frozen=True, slots=True)
class Mint:
    pool: str
    to: str
    amount: int
    token_id: str = ""
    uri: str = ""
    metadata_hash: bytes = b""
    message: PinCommand | None = None
    """The pins record of a message confirmed with this mint (see the module notes)."""

    def encode(self) -> bytes:
        fields = [self.pool, self.to, self.amount, self.token_id, self.uri, self.metadata_hash]
        return _encode(L_MINT, fields, self.message)


@dataclass(frozen=True, slots=True)
class Burn:
    pool: str
    from_: str
    amount: int
    token_id: str = ""
    message: PinCommand | None = None

    def encode(self) -> bytes:
        return _encode(L_BURN, [self.pool, self.from_, self.amount, self.token_id], self.message)


@dataclass(frozen=True, slots=True)
class Transfer:
    pool: str
    from_: str
    to: str
    amount: int
    token_id: str = ""
    operator: str = ""
    """Set when an approved operator moves the owner's tokens; "" when the owner does."""
    pin: bytes = b""
    """32 bytes recorded with the transfer, uninterpreted (``message`` carries a message)."""
    message: PinCommand | None = None
    """The pins record of a message confirmed with this transfer."""

    def encode(self) -> bytes:
        if (
            self.message is None
            and type(self.amount) is int
            and self.amount >= 0
            and type(self.pin) is bytes
            and all(
                type(x) is str
                for x in (self.pool, self.from_, self.to, self.token_id, self.operator)
            )
        ):
            return self._format()
        return self._encode_generic()

    def _format(self) -> bytes:
        """``_encode_generic``'s bytes for a transfer without a message, in one step (a
        batch submit encodes hundreds)."""
        moved = _format_movement(
            self.pool, self.from_, self.to, self.amount, self.token_id, self.operator, self.pin
        )
        return b"%s%s>" % (_TRANSFER_LABEL, moved)

    def _encode_generic(self) -> bytes:
        fields = [
            self.pool,
            self.from_,
            self.to,
            self.amount,
            self.token_id,
            self.operator,
            self.pin,
        ]
        return _encode(L_TRANSFER, fields, self.message)


@dataclass(frozen=True, slots=True)
class Approve:
    pool: str
    owner: str
    operator: str
    amount: int = 0
    """Allowance in base units (replaces the previous one; 0 with ``all_`` false revokes)."""
    all_: bool = False
    """Operator for all of the owner's tokens in the pool (no allowance counted)."""

    def encode(self) -> bytes:
        return encode(
            Record(L_APPROVE, self.pool, self.owner, self.operator, self.amount, self.all_)
        )


Operation = CreatePool | Mint | Burn | Transfer | Approve


def _encode(label: Symbol, fields: list[object], message: PinCommand | None) -> bytes:
    """An operation's body: its fields, then the message's pins record if it carries one
    (an operation without a message keeps the body it always had)."""
    if message is not None:
        fields = [*fields, message.to_record()]
    return encode(Record(label, *fields))


class BadBody(Exception):
    """A body that is not a well-formed token operation (the handler refuses it)."""


def _str(v: object) -> str:
    if type(v) is not str:
        raise BadBody("expected a string")
    return v


def _int(v: object) -> int:
    if type(v) is not int:
        raise BadBody("expected an integer")
    return v


def _bytes(v: object) -> bytes:
    if type(v) is not bytes:
        raise BadBody("expected bytes")
    return v


def _message_after(fields: Sequence[object], n: int) -> PinCommand | None:
    """The pins record an operation of ``n`` fields carries as its last one, if any."""
    if len(fields) == n:
        return None
    try:
        return parse_pin_record(fields[n])
    except MalformedPins as exc:
        raise BadBody(f"message: {exc.message}") from None


def decode_operation(body: bytes) -> Operation:
    """Parse a command body; field meanings are checked by the handler, shapes here."""
    try:
        rec = decode(body)
    except SyrupError as exc:
        raise BadBody(f"not canonical Syrup: {exc.message}") from None
    if not isinstance(rec, Record):
        raise BadBody("not a record")
    label, f = rec.label, rec.fields
    try:
        if label == L_TRANSFER and len(f) in (7, 8):
            m = _message_after(f, 7)
            a, b, c, d, e, g, h = f[:7]
            if (
                type(a) is str
                and type(b) is str
                and type(c) is str
                and type(d) is int
                and type(e) is str
                and type(g) is str
                and type(h) is bytes
            ):  # the common shape, checked at once (the field checks below name a fault)
                return Transfer(a, b, c, d, e, g, h, m)
            return Transfer(
                _str(f[0]),
                _str(f[1]),
                _str(f[2]),
                _int(f[3]),
                _str(f[4]),
                _str(f[5]),
                _bytes(f[6]),
                m,
            )
        if label == L_MINT and len(f) in (6, 7):
            m = _message_after(f, 6)
            return Mint(_str(f[0]), _str(f[1]), _int(f[2]), _str(f[3]), _str(f[4]), _bytes(f[5]), m)
        if label == L_BURN and len(f) in (4, 5):
            return Burn(_str(f[0]), _str(f[1]), _int(f[2]), _str(f[3]), _message_after(f, 4))
        if label == L_APPROVE and len(f) == 5:
            if type(f[4]) is not bool:
                raise BadBody("expected a boolean")
            return Approve(_str(f[0]), _str(f[1]), _str(f[2]), _int(f[3]), f[4])
        if label == L_POOL and len(f) == 6:
            kind, policy, minters = f[1], f[4], f[5]
            if not isinstance(kind, Symbol) or kind.name not in PoolType._value2member_map_:
                raise BadBody("unknown pool type")
            if not isinstance(policy, Symbol) or policy.name not in MintPolicy._value2member_map_:
                raise BadBody("unknown mint policy")
            if not isinstance(minters, list):
                raise BadBody("minters are a list")
            cap = f[3]
            if cap is not False and type(cap) is not int:
                raise BadBody("max supply is an integer or false")
            return CreatePool(
                _str(f[0]),
                PoolType(kind.name),
                _int(f[2]),
                None if cap is False else cap,
                MintPolicy(policy.name),
                tuple(_str(m) for m in minters),
            )
    except BadBody as exc:
        raise BadBody(f"{label!s} body: {exc}") from None
    raise BadBody(f"unknown operation {str(getattr(label, 'name', label))[:32]!r}/{len(f)}")


# -- rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pool:
    """A pool as stored: its definition, who created it, the transaction that did."""

    name: str
    type: PoolType
    decimals: int
    max_supply: int | None
    mint_policy: MintPolicy
    minters: tuple[str, ...]
    creator: str
    tx_id: str

    @property
    def fungible(self) -> bool:
        return self.type is PoolType.FUNGIBLE

    def may_mint(self, member: str) -> bool:
        if not member:
            return False
        if self.mint_policy is MintPolicy.ANY:
            return True
        if self.mint_policy is MintPolicy.CREATOR:
            return member == self.creator
        return member in self.minters

    def encode(self) -> bytes:
        return encode(
            Record(
                L_POOL_ROW,
                Symbol(self.type.value),
                self.decimals,
                False if self.max_supply is None else self.max_supply,
                Symbol(self.mint_policy.value),
                list(self.minters),
                self.creator,
                self.tx_id,
            )
        )

    @classmethod
    def decode(cls, name: str, data: bytes) -> Pool:
        rec = decode(data)
        assert isinstance(rec, Record) and rec.label == L_POOL_ROW and len(rec.fields) == 7
        kind, decimals, cap, policy, minters, creator, tx_id = rec.fields
        assert isinstance(kind, Symbol) and isinstance(policy, Symbol)
        assert isinstance(minters, list) and type(decimals) is int
        assert type(creator) is str and type(tx_id) is str
        assert cap is False or type(cap) is int
        return cls(
            name,
            PoolType(kind.name),
            decimals,
            None if cap is False else cap,
            MintPolicy(policy.name),
            tuple(str(m) for m in minters),
            creator,
            tx_id,
        )


@dataclass(frozen=True, slots=True)
class Nft:
    owner: str
    uri: str = ""
    metadata_hash: bytes = b""

    def encode(self) -> bytes:
        return encode(Record(L_NFT_ROW, self.owner, self.uri, self.metadata_hash))

    @classmethod
    def decode(cls, data: bytes) -> Nft:
        rec = decode(data)
        assert isinstance(rec, Record) and rec.label == L_NFT_ROW and len(rec.fields) == 3
        owner, uri, digest = rec.fields
        assert type(owner) is str and type(uri) is str and type(digest) is bytes
        return cls(owner, uri, digest)


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One balance change in the history (``charter.tokens.transfers``)."""

    seqno: int
    view: int
    kind: TransferKind
    pool: str
    from_: str
    """"" for a mint."""
    to: str
    """"" for a burn."""
    amount: int
    token_id: str
    operator: str
    pin: bytes
    member: str
    """The member whose node submitted it."""
    batch_seq: int
    """The submitting node's microsecond clock when it batched the transaction."""
    batch_hash: bytes = b""
    """For an operation carrying a message: the hash of the message's batch (``pin`` is
    then the message's pin)."""

    @property
    def tx_id(self) -> str:
        return f"{self.view}.{self.seqno}"

    def encode(self) -> bytes:
        if min(self.view, self.amount, self.batch_seq) >= 0:
            data = self._format()
        else:
            data = self._encode_generic()
        _remember(data, self)
        return data

    def _format(self) -> bytes:
        """The canonical bytes of ``_encode_generic``, formatted in one step (every node
        writes one row per operation; the generic encoder visits each field in turn)."""
        moved = _format_movement(
            self.pool, self.from_, self.to, self.amount, self.token_id, self.operator, self.pin
        )
        member = self.member.encode("utf-8")
        head = b'%s%d+%s%s%d"%s%d+' % (
            _ROW_LABEL,
            self.view,
            _KIND_BYTES[self.kind],
            moved,
            len(member),
            member,
            self.batch_seq,
        )
        if self.batch_hash:
            return b"%s%d:%s>" % (head, len(self.batch_hash), self.batch_hash)
        return head + b">"

    def _encode_generic(self) -> bytes:
        fields: list[object] = [
            self.view,
            _KIND_SYMBOLS[self.kind],
            self.pool,
            self.from_,
            self.to,
            self.amount,
            self.token_id,
            self.operator,
            self.pin,
            self.member,
            self.batch_seq,
        ]
        if self.batch_hash:  # rows without a message keep their eleven fields
            fields.append(self.batch_hash)
        return encode(Record(L_TRANSFER_ROW, *fields))

    @classmethod
    def decode(cls, key: str, data: bytes) -> TransferRecord:
        known = _recalled(data)
        if known is not None and transfer_key(known.seqno) == key:
            return known  # the row this process encoded (immutable, so shared)
        rec = decode(data)
        assert isinstance(rec, Record) and rec.label == L_TRANSFER_ROW
        assert len(rec.fields) in (11, 12)
        view, kind, pool, from_, to, amount, token_id, operator, pin, member, batch_seq = (
            rec.fields[:11]
        )
        batch_hash = rec.fields[11] if len(rec.fields) == 12 else b""
        assert isinstance(kind, Symbol) and type(view) is int
        assert type(pool) is str and type(from_) is str and type(to) is str
        assert type(amount) is int and type(token_id) is str and type(operator) is str
        assert type(pin) is bytes and type(member) is str and type(batch_seq) is int
        assert type(batch_hash) is bytes
        return cls(
            int(key),
            view,
            _KINDS.get(kind) or TransferKind(kind.name),
            pool,
            from_,
            to,
            amount,
            token_id,
            operator,
            pin,
            member,
            batch_seq,
            batch_hash,
        )


_RECENT_ROWS_MAX = 8192
_recent_rows: dict[bytes, TransferRecord] = {}
_older_rows: dict[bytes, TransferRecord] = {}
"""History rows this process encoded lately, by their bytes (two generations, so that
forgetting is cheap): every node's handler writes a row that its event feed and explorer
decode again moments later."""


def _remember(data: bytes, rec: TransferRecord) -> None:
    global _recent_rows, _older_rows
    if len(_recent_rows) >= _RECENT_ROWS_MAX:
        _older_rows, _recent_rows = _recent_rows, {}
    _recent_rows[data] = rec


def _recalled(data: bytes) -> TransferRecord | None:
    return _recent_rows.get(data) or _older_rows.get(data)


def encode_supply(minted: int, burned: int) -> bytes:
    return b"%d %d" % (minted, burned)


def decode_supply(data: bytes | None) -> tuple[int, int]:
    if data is None:
        return 0, 0
    minted, burned = data.split(b" ")
    return int(minted), int(burned)


__all__ = [
    "ALL",
    "APP",
    "MAX_AMOUNT",
    "MAX_DECIMALS",
    "MAX_DIGITS",
    "PREFIX",
    "T_ALLOWANCES",
    "T_BALANCES",
    "T_MESSAGES",
    "T_NFTS",
    "T_POOLS",
    "T_SUPPLY",
    "T_TRANSFERS",
    "Approve",
    "BadBody",
    "Burn",
    "CreatePool",
    "Mint",
    "MintPolicy",
    "Nft",
    "Operation",
    "Pool",
    "PoolType",
    "Transfer",
    "TransferKind",
    "TransferRecord",
    "allowance_key",
    "balance_key",
    "decode_operation",
    "decode_supply",
    "encode_supply",
    "is_account",
    "is_amount",
    "is_member_name",
    "is_pool_name",
    "is_token_id",
    "nft_key",
    "owns",
    "parse_amount",
    "transfer_key",
]
