"""The governance command handler (app ``"gov"``): every node runs it over the same log.

A command body is one of three canonical records:

- ``<charter-gov-bootstrap genesis:bytes>``: writes the genesis constitution, members
  and nodes; accepted once, before anything else governance does;
- ``<charter-gov-signed body signature>``: a member's propose / ballot / withdraw
  (``requests``);
- ``<charter-join-signed body signature>``: a joining node's request, relayed by a
  trusted node (``join``).

Every command that applies is also logged, with its exact bytes, in
``charter.gov.log`` (``LoggedCommand``): the history ``audit`` replays.

**Ledger time.** The handler needs "now" for staleness without a clock of its own. It
keeps ``charter.gov.meta/clock``: on every governance transaction it becomes
``max(clock, batch_seq // 1000)``, where ``batch_seq`` is the submitting node's
microsecond batch clock carried in its signed batch. It therefore never goes back,
and is the same on every node.

**Checks of a member request**, each a refusal with a stable rule: bootstrapped
(``gov.bootstrap``), well-formed (``gov.format``), for this network (``gov.network``),
from an active member (``gov.member``), signed by that member's key over the stored
bytes (``gov.signature``), not older than the constitution's request window against
ledger time (``gov.stale``), nonce not seen within the window (``gov.replay``). Seen
nonces are kept per member with their creation time and forgotten once older than the
window (a request that old is refused as stale anyway). At most
``MAX_NONCES_PER_SENDER`` are kept: beyond that the oldest are forgotten and the
sender's ``floor`` rises to their creation time; a request not newer than the floor is
refused as stale, since its nonce can no longer be checked.

**Resolution.** Proposing counts as the proposer's ballot for. After the proposal and
after every ballot the thresholds (``thresholds``) decide: accepted proposals apply
their actions in the same transaction (or become ``failed`` with the reason if the
state no longer allows them); accepting one whose kinds change the rules
(``actions.CONSTITUTIONAL``) drops every other open proposal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.errors import CharterError
from charter.governance import actions as acts
from charter.governance import records as r
from charter.governance import state
from charter.governance.draft import Draft
from charter.governance.errors import RequestFormatError, RequestSignatureError
from charter.governance.join import JOIN_SIGNED, SignedJoinRequest
from charter.governance.model import Genesis, GovNode, Proposal
from charter.governance.requests import SIGNED, Ballot, Propose, SignedRequest, Withdraw
from charter.governance.thresholds import decide_all
from charter.identity.attestation import NODE, verify_chain
from charter.ledger.engine.commands import CommandContext, CommandRefused
from charter.ledger.engine.nodes import NodeStatus
from charter.ledger.engine.tx import Write

BOOTSTRAP = Symbol("charter-gov-bootstrap")
LOGGED = Symbol("charter-gov-logged")
NONCES = Symbol("charter-gov-nonces")
MAX_NONCES_PER_SENDER = 1024
TABLE_PREFIXES = (state.PREFIX, "charter.nodes")


def bootstrap_body(genesis: Genesis) -> bytes:
    return encode(Record(BOOTSTRAP, genesis.encode()))


@dataclass(frozen=True, slots=True)
class LoggedCommand:
    """A governance command as it applied: where, submitted by whom, its exact bytes."""

    seqno: int
    tx_id: str
    batch_seq: int
    submitter: str
    member: str
    body: bytes

    @property
    def key(self) -> str:
        return f"{self.seqno:012d}"

    def encode(self) -> bytes:
        return encode(
            Record(LOGGED, self.tx_id, self.batch_seq, self.submitter, self.member, self.body)
        )

    @classmethod
    def decode(cls, key: str, data: bytes) -> LoggedCommand:
        f = r.decode_record(data, LOGGED, 5, f"logged command {key}")
        if not (key.isascii() and key.isdigit()):
            raise RequestFormatError(f"logged command key {key!r} is not a seqno")
        return cls(
            int(key),
            r.text(f[0], "logged tx id", limit=64),
            r.integer(f[1], "logged batch seq"),
            r.text(f[2], "logged submitter", limit=256),
            r.text(f[3], "logged member", limit=256),
            r.octets(f[4], "logged body", limit=1 << 20),
        )


class GovernanceHandler:
    """Pure and deterministic: reads the state through ``ctx``, returns writes."""

    @property
    def tables(self) -> Sequence[str]:
        return TABLE_PREFIXES

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        try:
            value = decode(body)
        except SyrupError as exc:
            raise CommandRefused("gov.format", f"not canonical Syrup: {exc.message}") from None
        if not isinstance(value, Record):
            raise CommandRefused("gov.format", "a governance command is a record")
        draft = Draft(ctx)
        try:
            if value.label == SIGNED:
                self._member_request(ctx, draft, SignedRequest.decode(body))
            elif value.label == JOIN_SIGNED:
                self._join(ctx, draft, SignedJoinRequest.decode(body))
            elif value.label == BOOTSTRAP:
                self._bootstrap(ctx, draft, value)
            else:
                raise CommandRefused("gov.format", "not a governance command")
        except RequestSignatureError as exc:
            raise CommandRefused("gov.signature", exc.message) from None
        except RequestFormatError as exc:
            raise CommandRefused("gov.format", exc.message) from None
        except acts.ActionFailed as exc:
            raise CommandRefused(exc.rule, exc.message) from None
        logged = LoggedCommand(ctx.seqno, ctx.tx_id, ctx.batch_seq, ctx.submitter, ctx.member, body)
        draft.put(state.LOG_TABLE, logged.key, logged.encode())
        return draft.writes()

    # -- bootstrap ----------------------------------------------------------------------

    def _bootstrap(self, ctx: CommandContext, d: Draft, value: Record) -> None:
        if state.bootstrapped(d):
            raise CommandRefused("gov.bootstrap", "governance is already bootstrapped")
        f = r.record_fields(value, BOOTSTRAP, 1, "bootstrap")
        raw = r.octets(f[0], "genesis", limit=1 << 20)
        genesis = Genesis.decode(raw)
        d.put(state.CONSTITUTION_TABLE, state.CURRENT, genesis.constitution.encode())
        for m in genesis.members:
            d.put(state.MEMBERS_TABLE, m.name, m.encode())
        for n in genesis.nodes:
            d.put(state.NODES_TABLE, n.name, n.encode())
        for u in genesis.users:
            d.put(state.USERS_TABLE, u.key, u.encode())
        d.put(state.META_TABLE, state.NETWORK, genesis.network_id)
        d.put(state.META_TABLE, state.GENESIS_DIGEST, hashlib.sha256(raw).digest())
        self._advance_clock(ctx, d)
        acts.check_satisfiable(d)

    # -- common checks --------------------------------------------------------------------

    def _advance_clock(self, ctx: CommandContext, d: Draft) -> int:
        now = max(state.ledger_ms(d), ctx.batch_seq // 1000)
        d.put(state.META_TABLE, state.CLOCK, encode(now))
        return now

    def _fresh(
        self, ctx: CommandContext, d: Draft, sender: str, created_ms: int, nonce: bytes
    ) -> int:
        now = self._advance_clock(ctx, d)
        window = state.constitution(d).request_window_ms
        if created_ms < now - window:
            raise CommandRefused(
                "gov.stale",
                f"the request was created {now - created_ms} ms before ledger time; "
                f"the window is {window} ms",
            )
        floor, seen = _nonces(d, sender)
        if nonce in seen:
            raise CommandRefused("gov.replay", "this request's nonce was already used")
        if created_ms <= floor:
            raise CommandRefused(
                "gov.stale",
                "the request is older than requests of this sender whose nonces were "
                "forgotten; sign a new one",
            )
        kept = {n: t for n, t in seen.items() if t >= now - window}
        kept[nonce] = created_ms
        if len(kept) > MAX_NONCES_PER_SENDER:
            # Keep the newest; anything not newer than what is forgotten is refused above.
            ordered = sorted(kept.items(), key=lambda item: (item[1], item[0]))
            dropped = ordered[: len(kept) - MAX_NONCES_PER_SENDER]
            floor = max(floor, dropped[-1][1])
            kept = dict(ordered[len(dropped) :])
        d.put(state.NONCES_TABLE, sender, encode(Record(NONCES, floor, kept)))
        return now

    def _check_network(self, d: Draft, network_id: bytes) -> None:
        if not state.bootstrapped(d):
            raise CommandRefused("gov.bootstrap", "governance is not bootstrapped yet")
        if state.network_id(d) != network_id:
            raise CommandRefused("gov.network", "the request is for another network")

    # -- member requests ------------------------------------------------------------------

    def _member_request(self, ctx: CommandContext, d: Draft, signed: SignedRequest) -> None:
        req = signed.request
        self._check_network(d, req.network_id)
        member = state.member(d, req.member)
        if member is None:
            raise CommandRefused("gov.member", f"no member {req.member!r}")
        if not member.active:
            raise CommandRefused("gov.member", f"member {req.member!r} was removed")
        signed.verify(member.public_key)
        self._fresh(ctx, d, req.member, req.created_ms, req.nonce)
        payload = req.payload
        if isinstance(payload, Propose):
            self._propose(ctx, d, req.member, req.created_ms, payload)
        elif isinstance(payload, Ballot):
            self._ballot(ctx, d, req.member, payload)
        else:
            assert isinstance(payload, Withdraw)
            self._withdraw(ctx, d, req.member, payload)

    def _propose(
        self, ctx: CommandContext, d: Draft, proposer: str, created_ms: int, p: Propose
    ) -> None:
        actions = tuple(acts.check(a) for a in p.actions)
        # Refuse now what could not apply to the state as it is (it may still fail later).
        acts.apply_all(d, actions, acts.Where(ctx.tx_id))
        proposal = Proposal(
            ctx.tx_id, proposer, p.title, actions, {proposer: True}, "open", created_ms
        )
        self._resolve(ctx, d, proposal)

    def _open(self, d: Draft, pid: str) -> Proposal:
        proposal = state.proposal(d, pid)
        if proposal is None:
            raise CommandRefused("gov.proposal.unknown", f"no proposal {pid!r}")
        if not proposal.open:
            raise CommandRefused("gov.proposal.closed", f"proposal {pid} is {proposal.state}")
        return proposal

    def _ballot(self, ctx: CommandContext, d: Draft, voter: str, b: Ballot) -> None:
        proposal = self._open(d, b.proposal_id)
        if voter in proposal.ballots:
            raise CommandRefused("gov.ballot.twice", f"{voter} already voted on {proposal.id}")
        ballots = {**proposal.ballots, voter: b.approve}
        self._resolve(ctx, d, _replace(proposal, ballots=ballots))

    def _withdraw(self, ctx: CommandContext, d: Draft, who: str, w: Withdraw) -> None:
        proposal = self._open(d, w.proposal_id)
        if proposal.proposer != who:
            raise CommandRefused("gov.withdraw", "only the proposer may withdraw a proposal")
        self._put(d, _replace(proposal, state="withdrawn", decided_tx=ctx.tx_id))

    def _resolve(self, ctx: CommandContext, d: Draft, p: Proposal) -> None:
        const = state.constitution(d)
        voters = {m.name: m.roles for m in state.active_members(d)}
        kinds = sorted({a.kind for a in p.actions})
        decision = decide_all([const.threshold(k) for k in kinds], voters, p.ballots)
        if decision == "open":
            self._put(d, p)
            return
        if decision == "rejected":
            self._put(d, _replace(p, state="rejected", decided_tx=ctx.tx_id))
            return
        try:
            applied = acts.apply_all(d, p.actions, acts.Where(ctx.tx_id))
        except acts.ActionFailed as exc:
            failed = _replace(
                p, state="failed", decided_tx=ctx.tx_id, reason=f"{exc.rule}: {exc.message}"
            )
            self._put(d, failed)
            return
        d.merge(applied)
        self._put(d, _replace(p, state="accepted", decided_tx=ctx.tx_id))
        if any(a.kind in acts.CONSTITUTIONAL for a in p.actions):
            for other in state.proposals(d, state="open"):
                if other.id != p.id:
                    reason = f"the rules changed with proposal {p.id}"
                    self._put(
                        d, _replace(other, state="dropped", decided_tx=ctx.tx_id, reason=reason)
                    )

    def _put(self, d: Draft, p: Proposal) -> None:
        d.put(state.PROPOSALS_TABLE, p.id, p.encode())

    # -- join -----------------------------------------------------------------------------

    def _join(self, ctx: CommandContext, d: Draft, signed: SignedJoinRequest) -> None:
        req = signed.verify()
        self._check_network(d, req.network_id)
        now = self._fresh(ctx, d, f"node:{req.name}", req.created_ms, req.nonce)
        const = state.constitution(d)
        if req.measurement not in const.measurements:
            raise CommandRefused(
                "gov.measurement",
                f"code measurement {req.measurement} of node {req.name!r} is not allowed",
            )
        member = state.member(d, req.member)
        if member is None or not member.active:
            raise CommandRefused("gov.member", f"no active member {req.member!r}")
        try:
            chain = verify_chain(
                req.attestation,
                now=now // 1000,
                expected_root=member.public_key,
                expected_purpose=NODE,
            )
        except CharterError as exc:
            raise CommandRefused("gov.attestation", exc.message) from None
        if chain.leaf != req.identity:
            raise CommandRefused("gov.attestation", "the chain vouches for another key")
        node = GovNode(
            req.name, req.member, req.identity, req.ledger_cert, req.host, req.port,
            req.api_url, req.measurement, NodeStatus.PENDING,
        )  # fmt: skip
        acts.check_new_node(d, node)
        acts.apply_node(d, node)


def _nonces(d: Draft, sender: str) -> tuple[int, dict[bytes, int]]:
    """(floor, {nonce: created-ms}): requests at or below the floor were forgotten."""
    data = d.get(state.NONCES_TABLE, sender)
    if data is None:
        return 0, {}
    f = r.decode_record(data, NONCES, 2, "nonce table")
    floor = r.integer(f[0], "nonce floor")
    if not isinstance(f[1], dict):
        raise RequestFormatError("nonce table: expected a dictionary")
    return floor, {k: v for k, v in f[1].items() if type(k) is bytes and type(v) is int}


def _replace(p: Proposal, **changes: object) -> Proposal:
    return replace(p, **changes)  # type: ignore[arg-type]


__all__ = ["BOOTSTRAP", "GovernanceHandler", "LoggedCommand", "bootstrap_body"]
