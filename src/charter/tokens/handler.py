"""The tokens command handler: every node applies token operations and checks them.

Conservation is not a contract someone may get wrong: it is this handler, run by every
node over the same state in the same order. Each operation either makes all its writes
or raises ``CommandRefused("tokens.<rule>", ...)`` (the transaction is Invalid and
changes nothing). Rules, by the ``rule`` name a refusal carries:

- ``tokens.body``: the body is not a well-formed operation.
- ``tokens.policy``: pool creation is reserved to governance by the constitution.
- ``tokens.pool``: an invalid pool definition; ``tokens.pool.exists``: the name is
  taken; ``tokens.pool.unknown``: no such pool.
- ``tokens.account``, ``tokens.amount``, ``tokens.token_id``: malformed arguments.
- ``tokens.authority``: the submitting node's member does not own the account it
  moves, burns or approves from; ``tokens.mint.authority``: it may not mint here.
- ``tokens.allowance``: an operator's allowance does not cover the amount.
- ``tokens.balance``: the balance would go negative.
- ``tokens.supply``: the mint would exceed the pool's maximum supply.
- ``tokens.nft.exists`` / ``tokens.nft.owner``: an NFT id minted twice / not the
  sender's.
- ``tokens.transfer.self``: from and to are the same account.
- ``tokens.message``: an operation carrying a message names other than exactly one pin,
  or a transfer carries both a ``pin`` and a message; ``tokens.message.used``: an earlier
  operation carried that message (one message, one operation).

A mint, burn or transfer carrying a message records the message's pin and batch hash in
its history row and the pin in ``charter.tokens.messages``; the handler knows nothing
else of the message (the multi-party layer reads the record from the applied command).

The handler keeps no state between calls except a cache of decoded pool rows keyed by
their bytes (so equal bytes give the equal pool on every node) and a set of names
already found to be well-formed accounts: it reads only through ``ctx``. No signature
is verified per operation: the batch signature already authenticated the submitting
node, and ``ctx.member`` is its owner.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.ledger.engine import CommandContext, CommandRefused, Write
from charter.multiparty.pins import PinCommand
from charter.tokens.model import (
    ALL,
    MAX_AMOUNT,
    MAX_DECIMALS,
    MAX_MINTERS,
    MAX_URI_BYTES,
    PIN_BYTES,
    PREFIX,
    T_ALLOWANCES,
    T_BALANCES,
    T_MESSAGES,
    T_NFTS,
    T_POOLS,
    T_SUPPLY,
    T_TRANSFERS,
    Approve,
    BadBody,
    Burn,
    CreatePool,
    Mint,
    MintPolicy,
    Nft,
    Pool,
    PoolType,
    Transfer,
    TransferKind,
    TransferRecord,
    allowance_key,
    balance_key,
    decode_operation,
    decode_supply,
    encode_supply,
    is_account,
    is_member_name,
    is_pool_name,
    is_token_id,
    nft_key,
    owns,
    transfer_key,
)
from charter.tokens.policy import PoolCreation, pool_creation_policy

_POOL_CACHE_LIMIT = 4096
_ACCOUNT_CACHE_LIMIT = 65536


def _refuse(rule: str, message: str) -> CommandRefused:
    return CommandRefused(rule, message)


def create_pool_writes(ctx: CommandContext, op: CreatePool, creator: str) -> list[Write]:
    """The writes creating pool ``op`` for ``creator`` (checked; no policy check).

    The tokens handler calls it for a member's own request; governance calls it (from a
    handler that declared ``charter.tokens.`` among its tables) to create a pool an
    accepted proposal asks for when the constitution reserves pools to proposals.
    """
    if not is_pool_name(op.name):
        raise _refuse("tokens.pool", f"{op.name!r:.80} is not a pool name")
    if ctx.get(T_POOLS, op.name) is not None:
        raise _refuse("tokens.pool.exists", f"pool {op.name!r} exists")
    if op.type is PoolType.FUNGIBLE and not 0 <= op.decimals <= MAX_DECIMALS:
        raise _refuse("tokens.pool", f"decimals are 0..{MAX_DECIMALS}")
    if op.type is PoolType.NONFUNGIBLE and op.decimals != 0:
        raise _refuse("tokens.pool", "a non-fungible pool has no decimals")
    if op.max_supply is not None and not 0 < op.max_supply <= MAX_AMOUNT:
        raise _refuse("tokens.pool", "a maximum supply is a positive integer below 10**512")
    if op.mint_policy is MintPolicy.LISTED:
        if not 0 < len(op.minters) <= MAX_MINTERS:
            raise _refuse("tokens.pool", f"a minters list names 1..{MAX_MINTERS} members")
        if not all(is_member_name(m) for m in op.minters):
            raise _refuse("tokens.pool", "a minter is a member name")
        if list(op.minters) != sorted(set(op.minters)):
            raise _refuse("tokens.pool", "minters are sorted and unique")
    elif op.minters:
        raise _refuse("tokens.pool", f"mint policy {op.mint_policy.value} names no minters")
    pool = Pool(
        op.name,
        op.type,
        op.decimals,
        op.max_supply,
        op.mint_policy,
        op.minters,
        creator,
        ctx.tx_id,
    )
    return [
        Write(T_POOLS, op.name, pool.encode()),
        Write(T_SUPPLY, op.name, encode_supply(0, 0)),
    ]


class TokensHandler:
    """The ``tokens`` app of the ledger engine (see the module notes)."""

    tables: Sequence[str] = (PREFIX,)

    def __init__(self) -> None:
        self._pools: dict[bytes, Pool] = {}
        self._accounts: set[str] = set()
        """Names found to be accounts (a handful recur in every batch; a pure function)."""

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        try:
            op = decode_operation(body)
        except BadBody as exc:
            raise _refuse("tokens.body", str(exc)) from None
        if not ctx.member:
            raise _refuse("tokens.authority", f"node {ctx.submitter!r} belongs to no member")
        if type(op) is Transfer:
            return self._transfer(ctx, op)
        if type(op) is Mint:
            return self._mint(ctx, op)
        if type(op) is Burn:
            return self._burn(ctx, op)
        if type(op) is Approve:
            return self._approve(ctx, op)
        assert type(op) is CreatePool
        return self._create(ctx, op)

    # -- helpers ------------------------------------------------------------------------

    def _pool(self, ctx: CommandContext, name: str) -> Pool:
        raw = ctx.state.get(T_POOLS, name) if type(name) is str else None
        if raw is None:
            raise _refuse("tokens.pool.unknown", f"no pool {name!r:.80}")
        pool = self._pools.get(raw)
        if pool is None or pool.name != name:
            pool = Pool.decode(name, raw)
            if len(self._pools) >= _POOL_CACHE_LIMIT:
                self._pools.clear()
            self._pools[raw] = pool
        return pool

    @staticmethod
    def _balance(ctx: CommandContext, pool: str, account: str) -> int:
        raw = ctx.state.get(T_BALANCES, balance_key(pool, account))
        return 0 if raw is None else int(raw)

    @staticmethod
    def _set_balance(pool: str, account: str, value: int) -> Write:
        return Write(T_BALANCES, balance_key(pool, account), b"%d" % value if value else None)

    def _account(self, account: str, what: str) -> None:
        known = self._accounts
        if type(account) is str and account in known:
            return
        if not is_account(account):
            raise _refuse("tokens.account", f"{what} {account!r:.80} is not an account")
        if len(known) >= _ACCOUNT_CACHE_LIMIT:
            known.clear()
        known.add(account)

    @staticmethod
    def _amount(pool: Pool, amount: int, token_id: str) -> None:
        if pool.fungible:
            if not 0 < amount <= MAX_AMOUNT:
                raise _refuse("tokens.amount", "an amount is a positive integer below 10**512")
            if token_id:
                raise _refuse("tokens.token_id", f"pool {pool.name!r} is fungible: no token ids")
        else:
            if amount != 1:
                raise _refuse("tokens.amount", "a non-fungible token moves with amount 1")
            if not is_token_id(token_id):
                raise _refuse("tokens.token_id", f"{token_id!r:.80} is not a token id")

    @staticmethod
    def _history(ctx: CommandContext, rec: TransferRecord) -> Write:
        return Write(T_TRANSFERS, transfer_key(ctx.seqno), rec.encode())

    @staticmethod
    def _carried(
        ctx: CommandContext, message: PinCommand | None
    ) -> tuple[bytes, bytes, list[Write]]:
        """(pin, batch hash, writes) of the message an operation carries; b"" when none."""
        if message is None:
            return b"", b"", []
        if len(message.pins) != 1:
            raise _refuse("tokens.message", "an operation carries exactly one message pin")
        (pin,) = message.pins
        key = pin.hex()
        used = ctx.get(T_MESSAGES, key)
        if used is not None:
            raise _refuse("tokens.message.used", f"transaction {used.decode()} carried it")
        return pin, message.batch_hash, [Write(T_MESSAGES, key, ctx.tx_id.encode())]

    # -- operations ---------------------------------------------------------------------

    def _create(self, ctx: CommandContext, op: CreatePool) -> list[Write]:
        if pool_creation_policy(ctx.state) is PoolCreation.GOVERNANCE:
            raise _refuse("tokens.policy", "the constitution reserves pool creation to governance")
        return create_pool_writes(ctx, op, ctx.member)

    def _mint(self, ctx: CommandContext, op: Mint) -> list[Write]:
        pool = self._pool(ctx, op.pool)
        if not pool.may_mint(ctx.member):
            raise _refuse(
                "tokens.mint.authority", f"member {ctx.member!r} may not mint in {pool.name!r}"
            )
        self._account(op.to, "recipient")
        self._amount(pool, op.amount, op.token_id)
        pin, batch_hash, carried = self._carried(ctx, op.message)
        minted, burned = decode_supply(ctx.get(T_SUPPLY, pool.name))
        cap = MAX_AMOUNT if pool.max_supply is None else pool.max_supply
        if minted - burned + op.amount > cap or minted + op.amount > MAX_AMOUNT:
            raise _refuse(
                "tokens.supply", f"the mint would exceed the supply limit of {pool.name!r}"
            )
        writes = [
            Write(T_SUPPLY, pool.name, encode_supply(minted + op.amount, burned)),
            self._set_balance(pool.name, op.to, self._balance(ctx, pool.name, op.to) + op.amount),
        ]
        if pool.fungible:
            if op.uri or op.metadata_hash:
                raise _refuse("tokens.token_id", "fungible tokens carry no URI or metadata")
        else:
            key = nft_key(pool.name, op.token_id)
            if ctx.get(T_NFTS, key) is not None:
                raise _refuse("tokens.nft.exists", f"token {op.token_id!r} of {pool.name!r} exists")
            if len(op.uri.encode()) > MAX_URI_BYTES:
                raise _refuse("tokens.token_id", f"a URI is at most {MAX_URI_BYTES} bytes")
            if op.metadata_hash and len(op.metadata_hash) != 32:
                raise _refuse("tokens.token_id", "a metadata hash is 32 bytes")
            writes.append(Write(T_NFTS, key, Nft(op.to, op.uri, op.metadata_hash).encode()))
        rec = TransferRecord(
            ctx.seqno,
            ctx.view,
            TransferKind.MINT,
            pool.name,
            "",
            op.to,
            op.amount,
            op.token_id,
            "",
            pin,
            ctx.member,
            ctx.batch_seq,
            batch_hash,
        )
        writes.append(self._history(ctx, rec))
        return writes + carried

    def _burn(self, ctx: CommandContext, op: Burn) -> list[Write]:
        pool = self._pool(ctx, op.pool)
        self._account(op.from_, "account")
        if not owns(ctx.member, op.from_):
            raise _refuse(
                "tokens.authority", f"member {ctx.member!r} does not own account {op.from_!r}"
            )
        self._amount(pool, op.amount, op.token_id)
        pin, batch_hash, writes = self._carried(ctx, op.message)
        if not pool.fungible:
            key = nft_key(pool.name, op.token_id)
            raw = ctx.get(T_NFTS, key)
            if raw is None or Nft.decode(raw).owner != op.from_:
                raise _refuse(
                    "tokens.nft.owner", f"{op.from_!r} does not own token {op.token_id!r}"
                )
            writes.append(Write(T_NFTS, key, None))
        balance = self._balance(ctx, pool.name, op.from_)
        if balance < op.amount:
            raise _refuse("tokens.balance", f"{op.from_!r} holds {balance}, burns {op.amount}")
        minted, burned = decode_supply(ctx.get(T_SUPPLY, pool.name))
        writes.append(Write(T_SUPPLY, pool.name, encode_supply(minted, burned + op.amount)))
        writes.append(self._set_balance(pool.name, op.from_, balance - op.amount))
        rec = TransferRecord(
            ctx.seqno,
            ctx.view,
            TransferKind.BURN,
            pool.name,
            op.from_,
            "",
            op.amount,
            op.token_id,
            "",
            pin,
            ctx.member,
            ctx.batch_seq,
            batch_hash,
        )
        writes.append(self._history(ctx, rec))
        return writes

    def _transfer(self, ctx: CommandContext, op: Transfer) -> list[Write]:
        pool = self._pool(ctx, op.pool)
        src, dst, amount = op.from_, op.to, op.amount
        self._account(src, "sender")
        self._account(dst, "recipient")
        if src == dst:
            raise _refuse("tokens.transfer.self", f"{src!r} sends to itself")
        self._amount(pool, amount, op.token_id)
        if op.pin and len(op.pin) != PIN_BYTES:
            raise _refuse("tokens.pin", f"a message pin is {PIN_BYTES} bytes")
        if op.pin and op.message is not None:
            raise _refuse("tokens.message", "a transfer carries a pin or a message, not both")
        pin, batch_hash, writes = self._carried(ctx, op.message)
        pin = pin or op.pin
        if not op.operator:
            if not owns(ctx.member, src):
                raise _refuse(
                    "tokens.authority", f"member {ctx.member!r} does not own account {src!r}"
                )
        else:
            self._account(op.operator, "operator")
            if not owns(ctx.member, op.operator):
                raise _refuse(
                    "tokens.authority",
                    f"member {ctx.member!r} does not own operator account {op.operator!r}",
                )
            akey = allowance_key(pool.name, src, op.operator)
            allowance = ctx.get(T_ALLOWANCES, akey)
            if allowance is None:
                raise _refuse("tokens.allowance", f"{op.operator!r} is not approved by {src!r}")
            if allowance != ALL:
                left = int(allowance) - amount
                if left < 0:
                    raise _refuse(
                        "tokens.allowance",
                        f"{op.operator!r} may move {int(allowance)} of {src!r}'s, not {amount}",
                    )
                writes.append(Write(T_ALLOWANCES, akey, b"%d" % left if left else None))
        if not pool.fungible:
            key = nft_key(pool.name, op.token_id)
            raw = ctx.get(T_NFTS, key)
            nft = None if raw is None else Nft.decode(raw)
            if nft is None or nft.owner != src:
                raise _refuse("tokens.nft.owner", f"{src!r} does not own token {op.token_id!r}")
            writes.append(Write(T_NFTS, key, Nft(dst, nft.uri, nft.metadata_hash).encode()))
        have = self._balance(ctx, pool.name, src)
        if have < amount:
            raise _refuse("tokens.balance", f"{src!r} holds {have}, sends {amount}")
        writes.append(self._set_balance(pool.name, src, have - amount))
        writes.append(
            self._set_balance(pool.name, dst, self._balance(ctx, pool.name, dst) + amount)
        )
        rec = TransferRecord(
            ctx.seqno,
            ctx.view,
            TransferKind.TRANSFER,
            pool.name,
            src,
            dst,
            amount,
            op.token_id,
            op.operator,
            pin,
            ctx.member,
            ctx.batch_seq,
            batch_hash,
        )
        writes.append(self._history(ctx, rec))
        return writes

    def _approve(self, ctx: CommandContext, op: Approve) -> list[Write]:
        pool = self._pool(ctx, op.pool)
        self._account(op.owner, "owner")
        self._account(op.operator, "operator")
        if not owns(ctx.member, op.owner):
            raise _refuse(
                "tokens.authority", f"member {ctx.member!r} does not own account {op.owner!r}"
            )
        if op.owner == op.operator:
            raise _refuse("tokens.account", "an account cannot approve itself")
        if not 0 <= op.amount <= MAX_AMOUNT:
            raise _refuse("tokens.amount", "an allowance is a non-negative integer below 10**512")
        if op.all_ and op.amount:
            raise _refuse("tokens.amount", "an operator for all takes no allowance amount")
        if not pool.fungible and op.amount:
            raise _refuse("tokens.amount", "non-fungible pools approve operators for all only")
        key = allowance_key(pool.name, op.owner, op.operator)
        value = ALL if op.all_ else (b"%d" % op.amount if op.amount else None)
        return [Write(T_ALLOWANCES, key, value)]


__all__ = ["TokensHandler", "create_pool_writes"]
