"""Golden cases for `twinedge aas validate`: tests/cases/aas_validate/<case>/input.* -> expected.txt.

expected.txt holds the exact output (stdout and stderr) and, last, `exit N`. To add a case, make a
folder with the bad input, run `twinedge aas validate input.<ext>` in it and review the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import CASES
from twinedge.cli import cli

CASE_DIRS = sorted(p for p in (CASES / "aas_validate").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_validate_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    source = next(case.glob("input.*")).name
    result = CliRunner().invoke(cli, ["aas", "validate", source])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output + f"exit {result.exit_code}\n" == (case / "expected.txt").read_text()


def test_at_least_ten_kinds_of_bad_input_fail() -> None:
    failing = [c for c in CASE_DIRS if (c / "expected.txt").read_text().endswith("exit 1\n")]
    assert len(failing) >= 10


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, not just the click runner: one line per problem, exit 1."""
    bad = [next((CASES / "aas_validate" / name).glob("input.*"))
           for name in ("json-syntax-truncated", "aasx-truncated", "constraint-idshort-in-list")]
    proc = subprocess.run([sys.executable, "-m", "twinedge", "aas", "validate", *map(str, bad)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stdout.splitlines()) == 3
