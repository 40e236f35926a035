"""The tokens handler, operation by operation: what it writes and what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import Record, Symbol, encode
from charter.tokens import queries as q
from charter.tokens.model import (
    Approve,
    Burn,
    CreatePool,
    Mint,
    MintPolicy,
    PoolType,
    Transfer,
    TransferKind,
    TransferRecord,
    decode_operation,
)

from .harness import Ledger

F = PoolType.FUNGIBLE
N = PoolType.NONFUNGIBLE


@pytest.fixture
def led() -> Ledger:
    ledger = Ledger()
    assert ledger.run("bank", CreatePool("usd", F, 2)).ok
    assert ledger.run("bank", Mint("usd", "bank", 1000)).ok
    return ledger


def test_pool_creation_records_the_creator_and_refuses_a_taken_name(led: Ledger) -> None:
    p = q.pool(led.kv, "usd")
    assert p is not None and p.creator == "bank" and p.decimals == 2 and p.tx_id == "1.1"
    assert led.run("other", CreatePool("usd", F)).rule == "tokens.pool.exists"
    assert led.run("other", CreatePool("bad name", F)).rule == "tokens.pool"
    assert led.run("other", CreatePool("x", N, decimals=2)).rule == "tokens.pool"
    assert led.run("other", CreatePool("x", F, mint_policy=MintPolicy.LISTED)).rule == (
        "tokens.pool"
    )
    listed = CreatePool("x", F, mint_policy=MintPolicy.LISTED, minters=("b", "a"))
    assert led.run("other", listed).rule == "tokens.pool"  # not sorted


def test_mint_transfer_burn_keep_supply_and_history(led: Ledger) -> None:
    assert led.run("bank", Transfer("usd", "bank", "supplier/ops", 300)).ok
    assert led.run("supplier", Burn("usd", "supplier/ops", 100)).ok
    assert q.balances(led.kv, "usd") == [
        q.Balance("bank", "usd", 700),
        q.Balance("supplier/ops", "usd", 200),
    ]
    s = q.supply(led.kv, "usd")
    assert s is not None and (s.minted, s.burned, s.total) == (1000, 100, 900)
    kinds = [(r.kind, r.from_, r.to, r.amount) for r in q.transfers(led.kv)]
    assert kinds == [
        (TransferKind.MINT, "", "bank", 1000),
        (TransferKind.TRANSFER, "bank", "supplier/ops", 300),
        (TransferKind.BURN, "supplier/ops", "", 100),
    ]
    assert [r.seqno for r in q.transfers(led.kv, account="supplier/ops", after=3)] == [4]
    assert len(q.transfers(led.kv, limit=2)) == 2


def test_refusals_name_their_rule_and_change_nothing(led: Ledger) -> None:
    before = dict((t, dict(rows)) for t, rows in led.kv.tables.items())
    cases = [
        ("bank", Transfer("usd", "bank", "x", 1001), "tokens.balance"),
        ("thief", Transfer("usd", "bank", "thief", 1), "tokens.authority"),
        ("thief", Mint("usd", "thief", 5), "tokens.mint.authority"),
        ("thief", Burn("usd", "bank", 5), "tokens.authority"),
        ("thief", Approve("usd", "bank", "thief", 5), "tokens.authority"),
        ("bank", Transfer("usd", "bank", "bank", 1), "tokens.transfer.self"),
        ("bank", Transfer("usd", "bank", "x", 0), "tokens.amount"),
        ("bank", Transfer("usd", "bank", "x", -1), "tokens.amount"),
        ("bank", Transfer("nope", "bank", "x", 1), "tokens.pool.unknown"),
        ("bank", Transfer("usd", "bank", "a|b", 1), "tokens.account"),
        ("bank", Transfer("usd", "bank", "x", 1, token_id="t"), "tokens.token_id"),
        ("bank", Transfer("usd", "bank", "x", 1, pin=b"short"), "tokens.pin"),
        ("thief", Transfer("usd", "bank", "thief", 1, operator="thief"), "tokens.allowance"),
        ("", Transfer("usd", "bank", "x", 1), "tokens.authority"),
    ]
    for member, op, rule in cases:
        out = led.run(member, op)
        assert out.rule == rule, (op, out.reason)
    assert led.run("bank", b"not syrup").rule == "tokens.body"
    assert led.run("bank", encode(Record(Symbol("transfer"), "usd"))).rule == "tokens.body"
    after = dict((t, dict(rows)) for t, rows in led.kv.tables.items())
    assert after == before


def test_a_member_moves_its_users_accounts_but_not_another_members(led: Ledger) -> None:
    assert led.run("bank", Transfer("usd", "bank", "bank/treasury", 10)).ok
    assert led.run("bank", Transfer("usd", "bank/treasury", "bankx", 4)).ok
    assert led.run("bankx", Transfer("usd", "bankx", "bank", 1)).ok
    # "bankx" is not a user of "bank" nor the reverse
    assert led.run("bank", Transfer("usd", "bankx", "bank", 1)).rule == "tokens.authority"


def test_allowance_is_spent_exactly_and_operator_for_all_is_unbounded(led: Ledger) -> None:
    assert led.run("bank", Approve("usd", "bank", "fin/desk", 50)).ok
    op = Transfer("usd", "bank", "supplier", 30, operator="fin/desk")
    assert led.run("fin", op).ok
    assert q.allowance(led.kv, "usd", "bank", "fin/desk") == b"20"
    assert led.run("fin", op).rule == "tokens.allowance"
    assert led.run("bank", op).rule == "tokens.authority"  # bank does not own fin/desk
    assert led.run("fin", Transfer("usd", "bank", "supplier", 20, operator="fin/desk")).ok
    assert q.allowance(led.kv, "usd", "bank", "fin/desk") is None
    assert led.run("bank", Approve("usd", "bank", "fin", all_=True)).ok
    assert led.run("fin", Transfer("usd", "bank", "fin", 900, operator="fin")).ok
    assert q.balance(led.kv, "usd", "bank") == 50
    assert led.run("bank", Approve("usd", "bank", "fin")).ok  # revoke
    assert led.run("fin", Transfer("usd", "bank", "fin", 1, operator="fin")).rule == (
        "tokens.allowance"
    )


def test_max_supply_caps_minted_minus_burned() -> None:
    led = Ledger()
    assert led.run("a", CreatePool("cap", F, max_supply=10)).ok
    assert led.run("a", Mint("cap", "a", 10)).ok
    assert led.run("a", Mint("cap", "a", 1)).rule == "tokens.supply"
    assert led.run("a", Burn("cap", "a", 3)).ok
    assert led.run("a", Mint("cap", "a", 3)).ok
    assert q.balance(led.kv, "cap", "a") == 10


def test_mint_policies() -> None:
    led = Ledger()
    assert led.run("a", CreatePool("any", F, mint_policy=MintPolicy.ANY)).ok
    assert led.run("z", Mint("any", "z", 1)).ok
    listed = CreatePool("club", F, mint_policy=MintPolicy.LISTED, minters=("b", "c"))
    assert led.run("a", listed).ok
    assert led.run("a", Mint("club", "a", 1)).rule == "tokens.mint.authority"
    assert led.run("c", Mint("club", "a", 1)).ok


def test_nonfungible_tokens_have_exactly_one_owner() -> None:
    led = Ledger()
    digest = bytes(range(32))
    assert led.run("a", CreatePool("deeds", N)).ok
    assert led.run("a", Mint("deeds", "a", 1, "lot-7", "https://x/7", digest)).ok
    assert led.run("a", Mint("deeds", "b", 1, "lot-7")).rule == "tokens.nft.exists"
    assert led.run("a", Mint("deeds", "b", 2, "lot-8")).rule == "tokens.amount"
    assert led.run("a", Mint("deeds", "b", 1, "")).rule == "tokens.token_id"
    assert led.run("a", Transfer("deeds", "a", "b", 1, "lot-7")).ok
    assert led.run("a", Transfer("deeds", "a", "b", 1, "lot-7")).rule == "tokens.nft.owner"
    nft = q.nft(led.kv, "deeds", "lot-7")
    assert nft is not None and nft.owner == "b" and nft.uri == "https://x/7"
    assert nft.metadata_hash == digest
    assert q.balance(led.kv, "deeds", "b") == 1 and q.balance(led.kv, "deeds", "a") == 0
    assert led.run("b", Approve("deeds", "b", "c", 1)).rule == "tokens.amount"
    assert led.run("b", Approve("deeds", "b", "c", all_=True)).ok
    assert led.run("c", Transfer("deeds", "b", "c", 1, "lot-7", operator="c")).ok
    assert led.run("c", Burn("deeds", "c", 1, "lot-7")).ok
    assert q.nft(led.kv, "deeds", "lot-7") is None
    s = q.supply(led.kv, "deeds")
    assert s is not None and (s.minted, s.burned) == (1, 1)


def test_amounts_far_above_2_256_are_exact() -> None:
    led = Ledger()
    big = 2**1000 + 12345
    assert led.run("a", CreatePool("big", F, 18)).ok
    assert led.run("a", Mint("big", "a", big)).ok
    assert led.run("a", Transfer("big", "a", "b", 2**999 + 1)).ok
    assert q.balance(led.kv, "big", "a") == big - 2**999 - 1
    assert q.balance(led.kv, "big", "b") == 2**999 + 1
    assert led.run("a", Mint("big", "a", 10**512)).rule == "tokens.amount"


def test_constitution_can_reserve_pool_creation_to_governance() -> None:
    from charter.governance.model import Constitution
    from charter.governance.state import CONSTITUTION_TABLE, CURRENT
    from charter.ledger.engine import CommandContext, Write
    from charter.tokens.handler import create_pool_writes

    led = Ledger()
    assert led.run("a", CreatePool("before", F)).ok
    rules = Constitution(token_pools="proposal").encode()
    led.kv.apply(led.seqno, [Write(CONSTITUTION_TABLE, CURRENT, rules)])
    assert led.run("a", CreatePool("after", F)).rule == "tokens.policy"
    ctx = CommandContext("gov", "n", "", 1, 99, "1.99", 0, led.kv, lambda _: None)
    writes = create_pool_writes(ctx, CreatePool("voted", F, 2), "a")
    led.kv.apply(99, writes)
    p = q.pool(led.kv, "voted")
    assert p is not None and p.creator == "a" and p.tx_id == "1.99"
    assert led.run("a", Mint("voted", "a", 5)).ok


def test_a_history_row_decodes_to_its_own_seqno_even_when_bytes_repeat() -> None:
    from charter.tokens.model import TransferKind, TransferRecord, transfer_key

    # two identical transfers in one batch: same row bytes, different seqnos (keys)
    a = TransferRecord(7, 1, TransferKind.TRANSFER, "p", "m", "m/u", 1, "", "", b"", "m", 5)
    b = TransferRecord(8, 1, TransferKind.TRANSFER, "p", "m", "m/u", 1, "", "", b"", "m", 5)
    raw = a.encode()
    assert b.encode() == raw
    assert TransferRecord.decode(transfer_key(7), raw) == a
    assert TransferRecord.decode(transfer_key(8), raw) == b
    assert TransferRecord.decode(transfer_key(9), bytes(bytearray(raw))).seqno == 9


_TEXT = st.text(max_size=10)
_AMOUNT = st.one_of(st.integers(0, 2**70), st.just(10**500), st.integers(-5, -1))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**40),
    st.integers(-2, 2**20),
    st.sampled_from(list(TransferKind)),
    _TEXT,
    _TEXT,
    _TEXT,
    _AMOUNT,
    _TEXT,
    st.binary(max_size=33),
    st.integers(-2, 2**62),
    st.one_of(st.just(b""), st.binary(min_size=32, max_size=32)),
)
def test_history_rows_and_transfer_bodies_formatted_directly_are_the_generic_bytes(
    seqno: int,
    view: int,
    kind: TransferKind,
    pool: str,
    src: str,
    dst: str,
    amount: int,
    token: str,
    pin: bytes,
    batch_seq: int,
    batch_hash: bytes,
) -> None:
    rec = TransferRecord(
        seqno, view, kind, pool, src, dst, amount, token, src, pin, dst, batch_seq, batch_hash
    )
    row = rec.encode()
    assert row == rec._encode_generic()
    op = Transfer(pool, src, dst, amount, token, dst, pin)
    assert op.encode() == op._encode_generic()
    if amount >= 0:
        assert decode_operation(op.encode()) == op
