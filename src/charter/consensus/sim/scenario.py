"""A small text language for hand-written consensus scenarios.

One command per line; ``#`` starts a comment; strings may be quoted. The network delivers in
send order with no delay (a tick delivers everything its messages cause), so a scenario is
fully deterministic; the invariant checker watches every step exactly as in seeded runs.

Commands::

    start N [no-prevote] [no-check-quorum] [seed S] [election E] [max-entries M]
    tick K [only A B ...]        deliver-all
    partition A B | C D ...      isolate A        drop A->B      heal
    hold A->B                    release A->B [reverse] [twice]
    crash A      restart A       slow-disk A EXTRA DURATION
    elect A                      force A to campaign now, deliver until it leads
    timeout A                    force A to campaign now, deliver nothing
    campaign A                   tick only A until its own timer fires, deliver all
    deliver [K]                  deliver the K oldest messages in flight
    propose A "data"             propose-refused A "data"
    add-learner N                promote N       remove N      (via the current leader)
    conf-refused add-learner|promote|remove N
    transfer A B                 compact A [INDEX]       read-index A "ctx"
    assert leader A | assert leader any | assert no-leader
    assert role A ROLE           assert term A [op]T      assert commit A [op]I
    assert committed A I         assert not-committed A I
    assert applied A "data"      assert not-applied A "data"
    assert log-term A I T        assert last-index A [op]I
    assert logs-equal [A B ...]  assert snapshot A [op]I
    assert voters A N...         assert learners A N...
    assert read A "ctx" [op]I    assert no-read A "ctx"
    assert crashed A

``op`` is one of ``= >= <= > <`` written before the number (``>=5``); the default is ``=``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from charter.consensus.sim import core
from charter.consensus.sim.cluster import Cluster
from charter.consensus.sim.errors import ScenarioError
from charter.consensus.sim.faults import NetProfile
from charter.consensus.types import ConfChangeKind, Message, MessageType

_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}


@dataclass(frozen=True, slots=True)
class Command:
    line: int
    words: tuple[str, ...]


def parse(text: str) -> list[Command]:
    """Split ``text`` into commands; raises ``ScenarioError`` on unbalanced quotes."""
    out: list[Command] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ScenarioError(str(exc), line=n) from None
        if words:
            out.append(Command(n, tuple(words)))
    return out


def _int(word: str, line: int) -> int:
    try:
        return int(word)
    except ValueError:
        raise ScenarioError(f"expected a number, got {word!r}", line=line) from None


def _cmp(spec: str, actual: int, what: str, line: int) -> None:
    for op in (">=", "<=", ">", "<", "="):
        if spec.startswith(op):
            want = _int(spec[len(op) :], line)
            break
    else:
        op, want = "=", _int(spec, line)
    if not _OPS[op](actual, want):
        raise ScenarioError(f"{what} is {actual}, expected {op}{want}", line=line)


def _link(word: str, line: int) -> tuple[int, int]:
    a, sep, b = word.partition("->")
    if not sep:
        raise ScenarioError(f"expected A->B, got {word!r}", line=line)
    return _int(a, line), _int(b, line)


class Scenario:
    """Executes parsed commands against a deterministic ``Cluster``."""

    def __init__(
        self,
        trace: Callable[[str], None] | None = None,
        node_factory: Callable[..., core.RaftNode] | None = None,
    ) -> None:
        self.cluster: Cluster | None = None
        self._trace = trace
        self._factory = node_factory

    @property
    def cl(self) -> Cluster:
        if self.cluster is None:
            raise ScenarioError("no cluster: the scenario must begin with 'start N'")
        return self.cluster

    def run(self, commands: Sequence[Command]) -> None:
        for cmd in commands:
            try:
                self.execute(cmd)
            except ScenarioError as exc:
                if exc.line is None:
                    raise ScenarioError(exc.message, line=cmd.line) from None
                raise

    # --- commands -----------------------------------------------------------------------------

    def execute(self, cmd: Command) -> None:
        w = cmd.words
        op, args, line = w[0], w[1:], cmd.line
        if op == "start":
            self._start(args, line)
        elif op == "tick":
            self._tick(args, line)
        elif op == "deliver-all":
            self.cl.deliver_all()
        elif op == "deliver":
            for _ in range(_int(args[0], line) if args else 1):
                if not self.cl.deliver_one():
                    raise ScenarioError("no message in flight to deliver", line=line)
        elif op == "partition":
            groups: list[list[int]] = [[]]
            for a in args:
                if a == "|":
                    groups.append([])
                else:
                    groups[-1].append(_int(a, line))
            self.cl.net.heal()
            self.cl.net.partition(groups, sorted(self.cl.nodes))
        elif op == "isolate":
            ids = sorted(self.cl.nodes)
            target = _int(args[0], line)
            self.cl.net.heal()
            self.cl.net.partition([[target], [i for i in ids if i != target]], ids)
        elif op == "drop":
            self.cl.net.block(*_link(args[0], line))
        elif op == "heal":
            self.cl.net.heal()
        elif op == "hold":
            self.cl.net.hold.add(_link(args[0], line))
        elif op == "release":
            src, dst = _link(args[0], line)
            self.cl.net.release(
                src,
                dst,
                reverse="reverse" in args[1:],
                copies=2 if "twice" in args[1:] else 1,
                now=self.cl.now,
            )
            self.cl.deliver_all()
        elif op == "crash":
            self.cl.crash(_int(args[0], line))
        elif op == "restart":
            self.cl.restart(_int(args[0], line))
        elif op == "slow-disk":
            nid, extra, dur = (_int(a, line) for a in args[:3])
            self.cl.slow_disk(nid, extra, self.cl.now + dur)
        elif op == "elect":
            self._elect(_int(args[0], line), line)
        elif op == "timeout":
            nid = _int(args[0], line)
            r = self.cl.raft(nid)
            self.cl.deliver(nid, Message(MessageType.TIMEOUT_NOW, nid, nid, r.term))
        elif op == "campaign":
            self._campaign(_int(args[0], line), line)
        elif op in ("propose", "propose-refused"):
            nid = _int(args[0], line)
            ok = self.cl.propose(nid, args[1].encode())
            if ok != (op == "propose"):
                what = "refused" if op == "propose" else "accepted"
                raise ScenarioError(f"proposal at node {nid} was {what}", line=line)
        elif op in ("add-learner", "promote", "remove"):
            self._conf(op, _int(args[0], line), line, expect=True)
        elif op == "conf-refused":
            self._conf(args[0], _int(args[1], line), line, expect=False)
        elif op == "transfer":
            src, dst = _int(args[0], line), _int(args[1], line)
            if not self.cl.transfer(src, dst):
                raise ScenarioError(f"transfer {src}->{dst} was refused", line=line)
        elif op == "compact":
            nid = _int(args[0], line)
            idx = _int(args[1], line) if len(args) > 1 else None
            if not self.cl.compact(nid, idx):
                raise ScenarioError(f"node {nid} had nothing to compact", line=line)
        elif op == "read-index":
            nid = _int(args[0], line)
            if not self.cl.read_index(nid, args[1].encode()):
                raise ScenarioError(f"read index at node {nid} was refused", line=line)
        elif op == "assert":
            self._assert(args, line)
        else:
            raise ScenarioError(f"unknown command {op!r}", line=line)

    def _start(self, args: Sequence[str], line: int) -> None:
        if self.cluster is not None:
            raise ScenarioError("'start' given twice", line=line)
        n = _int(args[0], line)
        seed, election = 1, 10
        options: dict[str, int] = {}
        rest = list(args[1:])
        while rest:
            word = rest.pop(0)
            if word in ("seed", "election", "max-entries") and rest:
                val = _int(rest.pop(0), line)
                if word == "seed":
                    seed = val
                elif word == "election":
                    election = val
                else:
                    options["max_entries_per_msg"] = val
            elif word not in ("no-prevote", "no-check-quorum"):
                raise ScenarioError(f"unknown start option {word!r}", line=line)
        self.cluster = Cluster(
            seed,
            n,
            profile=NetProfile(0, 0, 0.0, 0.0),
            election_ticks=election,
            pre_vote="no-prevote" not in args,
            check_quorum="no-check-quorum" not in args,
            trace=self._trace,
            node_factory=self._factory,
            node_options=options,
            trace_messages=self._trace is not None,
        )
        self.cluster.net.shuffle = False

    def _tick(self, args: Sequence[str], line: int) -> None:
        count = _int(args[0], line) if args else 1
        only: list[int] | None = None
        if len(args) > 1:
            if args[1] != "only":
                raise ScenarioError("expected 'tick K only A B ...'", line=line)
            only = [_int(a, line) for a in args[2:]]
        for _ in range(count):
            self.cl.tick(only)

    def _elect(self, nid: int, line: int) -> None:
        """Force ``nid`` to campaign now (as on TIMEOUT_NOW) and deliver until it leads.

        Messages still in flight when it wins (its first appends, late vote replies) stay
        in flight, so a scenario can cut the new leader off before it replicates anything.
        """
        cl = self.cl
        for _ in range(5):
            r = cl.raft(nid)
            if r.role is core.Role.FOLLOWER:
                cl.deliver(nid, Message(MessageType.TIMEOUT_NOW, r.leader_id or nid, nid, r.term))
            elif r.role is not core.Role.LEADER:
                # A lost campaign: let its own timer start the next one.
                term = r.term
                for _ in range(cl.election_ticks * 4):
                    cl.tick([nid], deliver=False)
                    r = cl.raft(nid)
                    if r.term != term or r.role is core.Role.PRE_CANDIDATE:
                        break
            for _ in range(10_000):
                if cl.raft(nid).role is core.Role.LEADER:
                    return
                if not cl.deliver_one():
                    break
        raise ScenarioError(f"node {nid} did not win its election", line=line)

    def _campaign(self, nid: int, line: int) -> None:
        """Tick only ``nid`` until its own election timer fires, then deliver everything."""
        cl = self.cl
        for _ in range(cl.election_ticks * 4):
            if cl.raft(nid).role in (core.Role.PRE_CANDIDATE, core.Role.CANDIDATE):
                break
            cl.tick([nid])
        else:
            raise ScenarioError(f"node {nid} never campaigned", line=line)
        cl.deliver_all()

    def _conf(self, op: str, target: int, line: int, *, expect: bool) -> None:
        cl = self.cl
        lead = cl.leader()
        if lead is None:
            raise ScenarioError(f"{op} {target}: there is no leader", line=line)
        kinds = {
            "add-learner": ConfChangeKind.ADD_LEARNER,
            "promote": ConfChangeKind.PROMOTE,
            "remove": ConfChangeKind.REMOVE,
        }
        if op not in kinds:
            raise ScenarioError(f"unknown membership change {op!r}", line=line)
        ok = cl.conf_change(lead.node_id, kinds[op], target)
        if ok != expect:
            raise ScenarioError(
                f"{op} {target} was {'refused' if expect else 'accepted'}", line=line
            )
        if ok and op == "add-learner" and target not in cl.nodes:
            cl.add_joiner(target)

    # --- assertions ---------------------------------------------------------------------------

    def _assert(self, args: Sequence[str], line: int) -> None:
        if not args:
            raise ScenarioError("empty assert", line=line)
        cl = self.cl
        what, rest = args[0], args[1:]
        if what == "leader":
            lead = cl.leader()
            got = lead.node_id if lead is not None else None
            if rest and rest[0] == "any":
                if got is None:
                    raise ScenarioError("expected a leader, there is none", line=line)
                return
            want = _int(rest[0], line)
            if got != want:
                raise ScenarioError(f"leader is {got}, expected {want}", line=line)
            return
        if what == "no-leader":
            lead = cl.leader()
            if lead is not None:
                raise ScenarioError(f"expected no leader, node {lead.node_id} leads", line=line)
            return
        if what == "logs-equal":
            ids = [_int(a, line) for a in rest] or [sn.node_id for sn in cl.live()]
            self._logs_equal(ids, line)
            return
        nid = _int(rest[0], line)
        sn = cl.node(nid)
        if what == "crashed":
            if sn.alive:
                raise ScenarioError(f"node {nid} is up", line=line)
            return
        if what in ("applied", "not-applied"):
            payload = b"N" + rest[1].encode()
            has = any(rec[2] == payload for rec in sn.applied)
            if has != (what == "applied"):
                raise ScenarioError(
                    f"node {nid} {'has not' if what == 'applied' else 'has'} applied {rest[1]!r}",
                    line=line,
                )
            return
        if what == "snapshot":
            _cmp(rest[1], sn.storage.snapshot_index(), f"node {nid} snapshot index", line)
            return
        if what == "last-index":
            _cmp(rest[1], sn.storage.last_index(), f"node {nid} last index", line)
            return
        if what == "log-term":
            idx, term = _int(rest[1], line), _int(rest[2], line)
            got_term = cl.checker.durable_log(nid).term_at(idx)
            if got_term != term:
                raise ScenarioError(
                    f"node {nid} entry {idx} has term {got_term}, expected {term}", line=line
                )
            return
        if what == "no-read":
            if rest[1].encode() in sn.read_results:
                raise ScenarioError(f"node {nid} served read {rest[1]!r}", line=line)
            return
        if what == "read":
            got_read = sn.read_results.get(rest[1].encode())
            if got_read is None:
                raise ScenarioError(f"node {nid} has no read {rest[1]!r}", line=line)
            if len(rest) > 2:
                _cmp(rest[2], got_read, f"node {nid} read index", line)
            return
        r = cl.raft(nid)
        if what == "role":
            want_role = rest[1].lower()
            if r.role.value != want_role:
                raise ScenarioError(
                    f"node {nid} is {r.role.value}, expected {want_role}", line=line
                )
        elif what == "term":
            _cmp(rest[1], r.term, f"node {nid} term", line)
        elif what == "commit":
            _cmp(rest[1], r.commit_index, f"node {nid} commit index", line)
        elif what in ("committed", "not-committed"):
            idx = _int(rest[1], line)
            if (r.commit_index >= idx) != (what == "committed"):
                raise ScenarioError(
                    f"node {nid} commit index is {r.commit_index} ({what} {idx} expected)",
                    line=line,
                )
        elif what in ("voters", "learners"):
            want_set = frozenset(_int(a, line) for a in rest[1:])
            conf = r.conf_state
            got_set = conf.voters if what == "voters" else conf.learners
            if got_set != want_set:
                raise ScenarioError(
                    f"node {nid} {what} are {sorted(got_set)}, expected {sorted(want_set)}",
                    line=line,
                )
        else:
            raise ScenarioError(f"unknown assertion {what!r}", line=line)

    def _logs_equal(self, ids: Sequence[int], line: int) -> None:
        cl = self.cl
        logs = {nid: cl.checker.durable_log(nid) for nid in ids}
        last = {nid: lg.last_index for nid, lg in logs.items()}
        if len(set(last.values())) > 1:
            raise ScenarioError(f"last indexes differ: {last}", line=line)
        top = max(last.values(), default=0)
        lo = max((lg.snap_index for lg in logs.values()), default=0)
        for idx in range(lo, top + 1):
            terms = {nid: lg.term_at(idx) for nid, lg in logs.items()}
            if len(set(terms.values())) > 1:
                raise ScenarioError(f"logs differ at index {idx}: terms {terms}", line=line)


def run_text(
    text: str,
    trace: Callable[[str], None] | None = None,
    node_factory: Callable[..., core.RaftNode] | None = None,
) -> Scenario:
    sc = Scenario(trace, node_factory)
    sc.run(parse(text))
    return sc


def run_file(
    path: Path,
    trace: Callable[[str], None] | None = None,
    node_factory: Callable[..., core.RaftNode] | None = None,
) -> Scenario:
    return run_text(path.read_text(encoding="utf-8"), trace, node_factory)
