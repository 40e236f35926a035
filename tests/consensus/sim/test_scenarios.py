"""Each ``scenarios/*.scn`` file is one test case; the scenario language itself is tested too."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.consensus.sim.errors import ScenarioError
from charter.consensus.sim.scenario import parse, run_file, run_text

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.scn"))


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    trace: list[str] = []
    try:
        run_file(path, trace.append)
    except Exception:
        print("\n".join(trace[-80:]))
        raise


def test_parse_comments_quotes_and_line_numbers() -> None:
    cmds = parse('# heading\nstart 3\n\npropose 1 "a b"  # trailing\n')
    assert [(c.line, c.words) for c in cmds] == [(2, ("start", "3")), (4, ("propose", "1", "a b"))]


def test_parse_rejects_unbalanced_quotes() -> None:
    with pytest.raises(ScenarioError, match="line 1"):
        parse('propose 1 "oops')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tick 1", "must begin with 'start N'"),
        ("start 3\nfrobnicate", "line 2: unknown command 'frobnicate'"),
        ("start 3\nstart 3", "line 2: 'start' given twice"),
        ("start 3\nassert leader 1", "line 2: leader is None, expected 1"),
        ("start 3\nassert term 1 >=9", "line 2: node 1 term is 1, expected >=9"),
        ("start 3\ndrop 1-2", "expected A->B"),
        ("start 3\ntick x", "expected a number"),
    ],
)
def test_failing_commands_name_their_line(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        run_text(text)
