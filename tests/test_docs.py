"""The documents promise things about the tests: keep those promises checkable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_security_md_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    files = set(re.findall(r"`(tests/[\w/]+\.py)", text))
    names = set(re.findall(r"::(test_\w+)", text))
    assert files and names
    for name in files:
        assert (ROOT / name).is_file(), name
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *sorted(files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    missing = [name for name in names if f"::{name}" not in collected]
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"
