"""`twinedge models new` and `build`: a new model from the skeleton or a shipped spec lints clean, builds
are reproducible, hand edits to generated files are caught."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from aas_models.catalogue.cli import models_group
from aas_models.catalogue.layout import ModelFolder, load_metadata
from aas_models.catalogue.lint import LintOptions, lint_paths

FAST = LintOptions(conformance=False)


def test_new_from_skeleton_and_from_shipped_spec(tmp_path: Path) -> None:
    runner = CliRunner()
    for kind in ("spot-welder", "cnc-lathe"):  # no shipped spec / a shipped spec
        result = runner.invoke(models_group, ["new", kind, "--root", str(tmp_path), "--owner", "Lee Sora <KETI>"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
    skeleton = ModelFolder(tmp_path / "spot-welder" / "1.0")
    assert load_metadata(skeleton).owners == ["Lee Sora <KETI>"]
    assert load_metadata(skeleton).status == "draft"
    assert lint_paths([tmp_path], options=FAST, jobs=1) == []

    again = runner.invoke(models_group, ["build", str(tmp_path)], catch_exceptions=False)
    assert again.output.count("up to date") == 2  # the build is deterministic

    readme = skeleton.file("README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\nhand edit\n", encoding="utf-8")
    assert [p.rule for p in lint_paths([tmp_path], options=FAST, jobs=1)] == ["catalogue/stale"]
    exists = runner.invoke(models_group, ["new", "spot-welder", "--root", str(tmp_path)])
    assert exists.exit_code == 1 and "exists already" in exists.output
