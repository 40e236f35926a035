"""The audit replays the logged governance commands and catches any tampering."""

from __future__ import annotations

from charter.codec.syrup import decode, encode
from charter.governance import state
from charter.governance.audit import MemoryState, audit
from charter.governance.handler import LoggedCommand

from .conftest import Gov, Keys, act, add_member, make_genesis


def history(gov: Gov, keys: Keys) -> str:
    pid = gov.propose("alice", add_member(keys)).tx_id
    gov.vote("bob", pid, False)
    gov.vote("carol", pid)
    other = gov.propose("bob", act("trigger_snapshot")).tx_id
    gov.withdraw("bob", other)
    from charter.governance.join import join_command

    gov.run(join_command(gov.join_request()))
    return pid


def test_a_clean_history_audits_ok(gov: Gov, keys: Keys) -> None:
    history(gov, keys)
    report = audit(gov.engine, genesis=make_genesis(keys))
    assert report.ok, report.findings
    assert report.commands == 7 and report.signatures == 6
    assert report.proposals == 2 and report.decisions == 2


def test_a_flipped_byte_in_a_stored_request_is_reported(gov: Gov, keys: Keys) -> None:
    history(gov, keys)
    copy = MemoryState.copy_of(gov.engine)
    rows = copy.tables[state.LOG_TABLE]
    key = sorted(rows)[2]  # bob's ballot
    logged = LoggedCommand.decode(key, rows[key])
    body = bytearray(logged.body)
    body[len(body) // 2] ^= 0x01
    tampered = LoggedCommand(
        logged.seqno, logged.tx_id, logged.batch_seq, logged.submitter, logged.member, bytes(body)
    )
    rows[key] = tampered.encode()
    report = audit(copy)
    assert not report.ok
    assert report.findings[0].where == logged.tx_id
    assert "refused on replay" in report.findings[0].problem


def test_a_decision_the_history_does_not_explain_is_reported(gov: Gov, keys: Keys) -> None:
    pid = gov.propose("alice", add_member(keys)).tx_id
    copy = MemoryState.copy_of(gov.engine)
    record = decode(copy.tables[state.PROPOSALS_TABLE][pid])
    fields = list(record.fields)  # type: ignore[attr-defined]
    from charter.codec.syrup import Record, Symbol

    fields[4] = Symbol("accepted")
    copy.tables[state.PROPOSALS_TABLE][pid] = encode(Record(record.label, *fields))  # type: ignore[attr-defined]
    report = audit(copy)
    assert [f.where for f in report.findings] == [f"{state.PROPOSALS_TABLE}/{pid}"]


def test_a_different_genesis_is_reported(gov: Gov, keys: Keys) -> None:
    from charter.governance.model import Constitution

    report = audit(gov.engine, genesis=make_genesis(keys, Constitution()))
    assert [f.problem for f in report.findings] == [
        "the bootstrapped genesis differs from this network file's"
    ]
