"""`charter demo` runs to completion, and the installed entry point prints clean errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from charter.cli.demo import STEPS, DemoError, run_demo

from .conftest import CliRunner


def test_demo_runs_to_completion(cli: CliRunner) -> None:
    result = cli("demo")
    assert result.code == 0, result.err
    assert "demo complete" in result.out
    for number, (title, _) in enumerate(STEPS, start=1):
        assert f"{number}. {title}" in result.out
    assert result.out.count("refused") >= 7
    # the network act: an election, forwarded writes committed, a leader change survived
    assert "this one process" in result.out
    assert "leader elected: member-" in result.out
    assert "new leader elected: member-" in result.out
    assert result.out.count("Committed") == 5
    assert "forwarded to the leader" in result.out
    assert "verified offline" in result.out


def test_demo_step_that_sees_no_refusal_fails(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    with pytest.raises(DemoError) as info:
        run_demo(console, tmp_path, steps=[STEPS[1]])  # recovery without an identity
    console.file.close()
    assert info.value.code == "demo.step"


def test_entry_point_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    code = "from charter.cli.main import main; main()"
    missing = str(tmp_path / "missing.key")
    proc = subprocess.run(
        [sys.executable, "-c", code, "keys", "show", missing],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"error [crypto.keyfile.missing] {missing} does not exist\n"
