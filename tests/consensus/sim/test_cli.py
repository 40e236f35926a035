"""``python -m charter.consensus.sim``: summary line, exit status, failing seeds with traces."""

from __future__ import annotations

import functools

import pytest
from typer.testing import CliRunner

from charter.consensus.raft import RaftNode
from charter.consensus.sim import cli, core


class _CommitsAlone(RaftNode):
    """Commits whatever it appends, with no quorum at all."""

    def _maybe_commit(self) -> bool:
        log = self._log
        last = log.last_index()
        if last > log.committed and log.term(last) == self._term:
            log.commit_to(last)
            return True
        return False


def test_clean_run_ends_with_the_summary_line() -> None:
    res = CliRunner().invoke(cli.app, ["--seeds", "4", "--start", "10", "--steps", "120"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == "4 seeds, 0 violations"


def test_one_seed_prints_its_trace() -> None:
    res = CliRunner().invoke(cli.app, ["--seed", "3", "--nodes", "5", "--steps", "100"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "1 seeds, 0 violations"
    assert any("leads term" in line for line in lines)


def test_bad_node_count_is_refused() -> None:
    res = CliRunner().invoke(cli.app, ["--nodes", "4"])
    assert res.exit_code != 0


def test_failing_seeds_are_reported_shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        core, "new_node", functools.partial(core.new_node, node_class=_CommitsAlone)
    )
    res = CliRunner().invoke(
        cli.app, ["--seeds", "2", "--nodes", "3", "--steps", "150", "--jobs", "1"]
    )
    assert res.exit_code == 1
    out = res.stdout
    assert out.strip().splitlines()[-1] == "2 seeds, 2 violations"
    assert "seed 0 (3 nodes): commit-quorum:" in out
    assert "shrunk schedule:" in out
    assert "trace:" in out
