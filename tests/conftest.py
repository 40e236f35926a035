"""Run the ``charter`` command in-process, through ``main()`` as the entry point does."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from charter.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one-line error, checked to be exactly one line and no traceback."""
        assert self.code != 0, self.out
        assert "Traceback" not in self.err
        assert self.err.endswith("\n") and self.err.count("\n") == 1, self.err
        return self.err.strip()


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    def run(*args: str, stdin: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["charter", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
