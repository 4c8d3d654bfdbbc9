"""Shared test fixtures: where the team's shared data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(scope="session")
def idta_templates() -> list[Path]:
    folder = SHARED / "idta-templates"
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip(f"IDTA templates not found in {folder} (the team's ../shared folder is absent)")
    return files
