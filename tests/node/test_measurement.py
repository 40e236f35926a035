"""The code measurement: stable for the same files, different for any change."""

from __future__ import annotations

import shutil
from pathlib import Path

from charter.node.measurement import measure, package_root


def test_measurement_is_stable_and_sensitive(tmp_path: Path) -> None:
    copy = tmp_path / "charter"
    shutil.copytree(package_root(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    first = measure(copy)
    assert first == measure(copy) == measure()
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert measure(copy) == first  # caches do not count
    target = copy / "errors.py"
    target.write_bytes(target.read_bytes() + b"\n")
    assert measure(copy) != first
    target.write_bytes(target.read_bytes()[:-1])
    assert measure(copy) == first
    (copy / "extra.py").write_text("")
    assert measure(copy) != first
