"""Reads of token state: pools, balances, supply, history, as the API answers them.

They read a ``StateView`` (a node's engine: its applied state), so a node answers from
its own copy of the ledger; what every node agrees on is what the handler wrote.
Scans go through the table in key order; the history table is keyed by zero-padded
seqno, so ``after`` (a seqno) and ``limit`` page through it in log order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from charter.ledger.engine import StateView
from charter.tokens.model import (
    SEP,
    T_ALLOWANCES,
    T_BALANCES,
    T_NFTS,
    T_POOLS,
    T_SUPPLY,
    T_TRANSFERS,
    Nft,
    Pool,
    TransferRecord,
    allowance_key,
    balance_key,
    decode_supply,
    nft_key,
    transfer_key,
)


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    pool: str
    balance: int


@dataclass(frozen=True, slots=True)
class Supply:
    pool: str
    minted: int
    burned: int

    @property
    def total(self) -> int:
        return self.minted - self.burned


def pool(view: StateView, name: str) -> Pool | None:
    raw = view.get(T_POOLS, name)
    return None if raw is None else Pool.decode(name, raw)


def pools(view: StateView) -> list[Pool]:
    return [Pool.decode(name, raw) for name, raw in view.items(T_POOLS)]


def supply(view: StateView, name: str) -> Supply | None:
    raw = view.get(T_SUPPLY, name)
    if raw is None:
        return None
    minted, burned = decode_supply(raw)
    return Supply(name, minted, burned)


def balance(view: StateView, pool_name: str, account: str) -> int:
    raw = view.get(T_BALANCES, balance_key(pool_name, account))
    return 0 if raw is None else int(raw)


def balances(
    view: StateView, pool_name: str | None = None, account: str | None = None
) -> list[Balance]:
    """Non-zero balances, by pool then account; either filter may be None."""
    if pool_name is not None and account is not None:
        value = balance(view, pool_name, account)
        return [Balance(account, pool_name, value)] if value else []
    out = []
    for key, raw in view.items(T_BALANCES):
        p, _, a = key.partition(SEP)
        if (pool_name is None or p == pool_name) and (account is None or a == account):
            out.append(Balance(a, p, int(raw)))
    return out


def nft(view: StateView, pool_name: str, token_id: str) -> Nft | None:
    raw = view.get(T_NFTS, nft_key(pool_name, token_id))
    return None if raw is None else Nft.decode(raw)


def nfts(view: StateView, pool_name: str) -> Iterator[tuple[str, Nft]]:
    start = pool_name + SEP
    for key, raw in view.items(T_NFTS):
        if key.startswith(start):
            yield key[len(start) :], Nft.decode(raw)


def allowance(view: StateView, pool_name: str, owner: str, operator: str) -> bytes | None:
    """``b"*"`` for an operator for all, the allowance's decimal bytes, or None."""
    return view.get(T_ALLOWANCES, allowance_key(pool_name, owner, operator))


def transfers(
    view: StateView,
    *,
    pool_name: str | None = None,
    account: str | None = None,
    after: int = -1,
    limit: int = 100,
) -> list[TransferRecord]:
    """History in log order: seqno above ``after``, touching ``account`` if given."""
    out: list[TransferRecord] = []
    if limit <= 0:
        return out
    floor = transfer_key(after) if after >= 0 else ""
    for key, raw in view.items(T_TRANSFERS):
        if key <= floor:
            continue
        rec = TransferRecord.decode(key, raw)
        if pool_name is not None and rec.pool != pool_name:
            continue
        if account is not None and account not in (rec.from_, rec.to):
            continue
        out.append(rec)
        if len(out) >= limit:
            break
    return out


__all__ = [
    "Balance",
    "Supply",
    "allowance",
    "balance",
    "balances",
    "nft",
    "nfts",
    "pool",
    "pools",
    "supply",
    "transfers",
]
