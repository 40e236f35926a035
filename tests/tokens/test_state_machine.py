"""Random operation sequences: a plain model against the real handler.

After every step the handler's ledger state equals the model's, and the invariants
hold: no negative balance, supply = minted - burned = the sum of balances (<= the
maximum supply), every non-fungible token has exactly one owner whose balance counts
it, and nothing moved without its owner's (or an approved operator's) authority.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from charter.tokens import queries as q
from charter.tokens.model import (
    Approve,
    Burn,
    CreatePool,
    Mint,
    MintPolicy,
    PoolType,
    Transfer,
    owns,
)

from .harness import Ledger

MEMBERS = ["m1", "m2", "m3"]
ACCOUNTS = ["m1", "m1/alice", "m2", "m2/bob", "m3"]
POOLS = ["p1", "p2", "n1"]
TOKEN_IDS = ["t1", "t2", "t3"]
amounts = st.one_of(
    st.integers(min_value=-2, max_value=50),
    st.integers(min_value=2**256, max_value=2**300),
)


@dataclass
class ModelPool:
    fungible: bool
    creator: str
    cap: int | None
    policy: MintPolicy
    minters: tuple[str, ...]
    minted: int = 0
    burned: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    allowances: dict[tuple[str, str], int | None] = field(default_factory=dict)
    """(owner, operator) -> allowance, None for an operator for all."""

    def may_mint(self, member: str) -> bool:
        if self.policy is MintPolicy.ANY:
            return True
        if self.policy is MintPolicy.CREATOR:
            return member == self.creator
        return member in self.minters


class TokensMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.led = Ledger()
        self.pools: dict[str, ModelPool] = {}
        self.accepted = 0

    def check(self, member: str, op: object, expected: str | None) -> None:
        out = self.led.run(member, op)  # type: ignore[arg-type]
        assert out.rule == expected, (op, member, out.reason)
        self.accepted += out.ok

    def unit_rules(self, p: ModelPool, amount: int, token_id: str) -> str | None:
        if p.fungible:
            return None if amount > 0 else "tokens.amount"
        return None if amount == 1 else "tokens.amount"

    @rule(
        member=st.sampled_from(MEMBERS),
        name=st.sampled_from(POOLS),
        cap=st.one_of(st.none(), st.integers(1, 100), st.just(2**280)),
        policy=st.sampled_from(list(MintPolicy)),
        minters=st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True),
    )
    def create(
        self, member: str, name: str, cap: int | None, policy: MintPolicy, minters: list[str]
    ) -> None:
        fungible = name.startswith("p")
        listed = tuple(sorted(minters)) if policy is MintPolicy.LISTED else ()
        op = CreatePool(name, PoolType.FUNGIBLE if fungible else PoolType.NONFUNGIBLE, 0, cap)
        op = CreatePool(op.name, op.type, 0, cap, policy, listed)
        expected = None
        if name in self.pools:
            expected = "tokens.pool.exists"
        elif policy is MintPolicy.LISTED and not listed:
            expected = "tokens.pool"
        self.check(member, op, expected)
        if expected is None:
            self.pools[name] = ModelPool(fungible, member, cap, policy, listed)

    @rule(
        member=st.sampled_from(MEMBERS),
        name=st.sampled_from(POOLS),
        to=st.sampled_from(ACCOUNTS),
        amount=amounts,
        token_id=st.sampled_from(TOKEN_IDS),
    )
    def mint(self, member: str, name: str, to: str, amount: int, token_id: str) -> None:
        p = self.pools.get(name)
        tid = "" if name.startswith("p") else token_id
        op = Mint(name, to, amount, tid)
        if p is None:
            self.check(member, op, "tokens.pool.unknown")
            return
        expected = None if p.may_mint(member) else "tokens.mint.authority"
        expected = expected or self.unit_rules(p, amount, tid)
        cap = p.cap if p.cap is not None else 10**512 - 1
        if expected is None and p.minted - p.burned + amount > cap:
            expected = "tokens.supply"
        if expected is None and not p.fungible and tid in p.owners:
            expected = "tokens.nft.exists"
        self.check(member, op, expected)
        if expected is None:
            p.minted += amount
            p.balances[to] = p.balances.get(to, 0) + amount
            if not p.fungible:
                p.owners[tid] = to

    @rule(
        member=st.sampled_from(MEMBERS),
        name=st.sampled_from(POOLS),
        src=st.sampled_from(ACCOUNTS),
        amount=amounts,
        token_id=st.sampled_from(TOKEN_IDS),
    )
    def burn(self, member: str, name: str, src: str, amount: int, token_id: str) -> None:
        p = self.pools.get(name)
        tid = "" if name.startswith("p") else token_id
        op = Burn(name, src, amount, tid)
        if p is None:
            self.check(member, op, "tokens.pool.unknown")
            return
        expected = None if owns(member, src) else "tokens.authority"
        expected = expected or self.unit_rules(p, amount, tid)
        if expected is None and not p.fungible and p.owners.get(tid) != src:
            expected = "tokens.nft.owner"
        if expected is None and p.balances.get(src, 0) < amount:
            expected = "tokens.balance"
        self.check(member, op, expected)
        if expected is None:
            p.burned += amount
            p.balances[src] -= amount
            if not p.fungible:
                del p.owners[tid]

    @rule(
        member=st.sampled_from(MEMBERS),
        name=st.sampled_from(POOLS),
        src=st.sampled_from(ACCOUNTS),
        dst=st.sampled_from(ACCOUNTS),
        amount=amounts,
        token_id=st.sampled_from(TOKEN_IDS),
        operator=st.sampled_from(["", *ACCOUNTS]),
    )
    def transfer(
        self,
        member: str,
        name: str,
        src: str,
        dst: str,
        amount: int,
        token_id: str,
        operator: str,
    ) -> None:
        p = self.pools.get(name)
        tid = "" if name.startswith("p") else token_id
        op = Transfer(name, src, dst, amount, tid, operator)
        if p is None:
            self.check(member, op, "tokens.pool.unknown")
            return
        expected = "tokens.transfer.self" if src == dst else None
        expected = expected or self.unit_rules(p, amount, tid)
        allowance: int | None = None
        if expected is None:
            if not operator:
                expected = None if owns(member, src) else "tokens.authority"
            elif not owns(member, operator):
                expected = "tokens.authority"
            elif (src, operator) not in p.allowances:
                expected = "tokens.allowance"
            else:
                allowance = p.allowances[(src, operator)]
                if allowance is not None and allowance < amount:
                    expected = "tokens.allowance"
        if expected is None and not p.fungible and p.owners.get(tid) != src:
            expected = "tokens.nft.owner"
        if expected is None and p.balances.get(src, 0) < amount:
            expected = "tokens.balance"
        self.check(member, op, expected)
        if expected is None:
            if operator and allowance is not None:
                if allowance == amount:
                    del p.allowances[(src, operator)]
                else:
                    p.allowances[(src, operator)] = allowance - amount
            p.balances[src] -= amount
            p.balances[dst] = p.balances.get(dst, 0) + amount
            if not p.fungible:
                p.owners[tid] = dst

    @rule(
        member=st.sampled_from(MEMBERS),
        name=st.sampled_from(POOLS),
        owner=st.sampled_from(ACCOUNTS),
        operator=st.sampled_from(ACCOUNTS),
        amount=st.integers(0, 60),
        all_=st.booleans(),
    )
    def approve(
        self, member: str, name: str, owner: str, operator: str, amount: int, all_: bool
    ) -> None:
        p = self.pools.get(name)
        op = Approve(name, owner, operator, amount, all_)
        if p is None:
            self.check(member, op, "tokens.pool.unknown")
            return
        expected = None if owns(member, owner) else "tokens.authority"
        if expected is None and owner == operator:
            expected = "tokens.account"
        if expected is None and amount and (all_ or not p.fungible):
            expected = "tokens.amount"
        self.check(member, op, expected)
        if expected is None:
            if all_:
                p.allowances[(owner, operator)] = None
            elif amount:
                p.allowances[(owner, operator)] = amount
            else:
                p.allowances.pop((owner, operator), None)

    @invariant()
    def state_matches_the_model_and_conserves(self) -> None:
        kv = self.led.kv
        assert sorted(p.name for p in q.pools(kv)) == sorted(self.pools)
        for name, p in self.pools.items():
            s = q.supply(kv, name)
            assert s is not None and (s.minted, s.burned) == (p.minted, p.burned)
            real = {b.account: b.balance for b in q.balances(kv, name)}
            assert real == {a: v for a, v in p.balances.items() if v}
            assert all(v > 0 for v in real.values())
            assert sum(real.values()) == s.total
            if p.cap is not None:
                assert s.total <= p.cap
            if not p.fungible:
                owners = dict((tid, n.owner) for tid, n in q.nfts(kv, name))
                assert owners == p.owners
                for account, count in real.items():
                    assert count == sum(1 for o in owners.values() if o == account)
            for (owner, operator), allowance in p.allowances.items():
                raw = q.allowance(kv, name, owner, operator)
                assert raw == (b"*" if allowance is None else b"%d" % allowance)

    def teardown(self) -> None:
        # every accepted balance change is in the history, in log order
        history = q.transfers(self.led.kv, limit=10**9)
        assert [r.seqno for r in history] == sorted(r.seqno for r in history)


TokensMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTokensStateMachine = TokensMachine.TestCase
