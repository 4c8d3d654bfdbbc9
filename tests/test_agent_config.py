"""Agent configuration errors: each golden case is a config and the lines its error must contain.

A case folder holds ``config.yaml`` and ``expected.txt`` (each line must appear in the message, which
names the file, the field path and what was expected)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.assembly import build_agent
from edge_agent.config import ConfigError, load_config
from tests.conftest import CASES

CASE_DIRS = sorted(p for p in (CASES / "agent_config").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_bad_config_is_named_precisely(case: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_agent(load_config(case / "config.yaml"), os.environ, "config.yaml")
    message = str(info.value).replace(str(case / "config.yaml"), "config.yaml")
    for line in (case / "expected.txt").read_text(encoding="utf-8").splitlines():
        assert line in message, f"{case.name}: expected {line!r} in:\n{message}"


def test_relative_paths_resolve_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        "buffer: {path: data/buffer.db}\nsinks: [{type: timeseries, path: data/ts.db}]\n", encoding="utf-8")
    config = load_config(tmp_path / "agent.yaml")
    assert config.buffer.path == tmp_path / "data/buffer.db"
    assert config.sinks[0].path == tmp_path / "data/ts.db"  # type: ignore[union-attr]
