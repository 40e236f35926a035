"""Typed errors of the consensus layer; each carries a stable ``code``."""

from __future__ import annotations

from charter.errors import CharterError


class ConsensusError(CharterError):
    """Base of every error raised by the Raft core, its storage and its driver."""

    code = "consensus.error"


class NotLeader(ConsensusError):
    """The request needs the leader; ``leader_id`` is the leader this node knows, if any."""

    code = "consensus.not_leader"

    def __init__(self, leader_id: int | None) -> None:
        where = f"node {leader_id}" if leader_id is not None else "unknown"
        super().__init__(f"not the leader (leader: {where})")
        self.leader_id = leader_id


class ProposalDropped(ConsensusError):
    """The proposal was not (or will never be) committed; the caller may retry."""

    code = "consensus.proposal_dropped"


class TransferInProgress(ConsensusError):
    """Leadership is being handed over; proposals and other transfers wait for it."""

    code = "consensus.transfer_in_progress"


class ConfChangeInProgress(ConsensusError):
    """A membership change is pending, or the leader has not yet committed in its term."""

    code = "consensus.conf_change_in_progress"


class InvalidConfig(ConsensusError):
    """A node Config with values the protocol cannot work with."""

    code = "consensus.config_invalid"


class ConfChangeInvalid(ConsensusError):
    """A membership change that makes no sense for the current configuration."""

    code = "consensus.conf_change_invalid"


class LearnerNotCaughtUp(ConsensusError):
    """A learner may be promoted only once it holds every committed entry."""

    code = "consensus.learner_not_caught_up"


class InvalidTransfer(ConsensusError):
    """Leadership can be handed only to another voter."""

    code = "consensus.transfer_invalid"


class ReadyOutstanding(ConsensusError):
    """``ready()`` was called again before the previous Ready was advanced."""

    code = "consensus.ready_outstanding"


class StorageError(ConsensusError):
    """Base of errors of the log storage."""

    code = "consensus.storage"


class Compacted(StorageError):
    """The requested index lies in the prefix replaced by a snapshot."""

    code = "consensus.storage.compacted"


class Unavailable(StorageError):
    """The requested index lies past the end of the log."""

    code = "consensus.storage.unavailable"


class SnapshotOutOfDate(StorageError):
    """A snapshot older than the one already held."""

    code = "consensus.storage.snapshot_out_of_date"


class DriverStopped(ConsensusError):
    """The asyncio driver is not running (stopped, or never started)."""

    code = "consensus.driver.stopped"
