"""Lint a generated catalogue of 500 reference models and print the time (goal: under 30 s here).

The models are the 12 catalogue specs, renamed per copy (``servo-press-007`` ...), each a complete
folder (spec.yaml, model.json, metadata.yaml, README.md, agent-binding.yaml) as `models new`/`build`
make them; generating them is not timed. Timed, each over the whole catalogue with the default
process pool:

- own rules: metamodel constraints, project lint, catalogue rules, generated files up to date,
  cross-catalogue ids (``twinedge models lint --no-conformance``);
- full, cold: plus aas-test-engines' file check on every model (a first run, or ``--no-cache``);
- full, warm: the default ``twinedge models lint`` once aas-test-engines' findings are cached for the
  unchanged models (the usual CI and pre-commit case: a pull request changes a few models).

Usage: python bench/models_bench.py [--models 500] [--jobs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aas_models.catalogue.layout import (  # noqa: E402
    BINDING,
    METADATA,
    MODEL,
    README,
    SPEC,
    ChangelogEntry,
    Metadata,
    discover,
    dump_metadata,
)
from aas_models.catalogue.lint import LintOptions, lint_paths  # noqa: E402
from aas_models.catalogue.readme import render_readme  # noqa: E402
from aas_models.catalogue.scaffold import binding_yaml, load_folder_spec  # noqa: E402
from aas_models.catalogue.template import build_template, dump_model  # noqa: E402


def generate(target: Path, count: int) -> int:
    """`count` model folders under `target`; returns the bytes of model.json written."""
    sources = discover([ROOT / "reference_models"])
    total = 0
    for i in range(count):
        source = sources[i % len(sources)]
        kind = f"{source.equipment_type}-{i:03d}"
        folder = target / kind / "1.0"
        folder.mkdir(parents=True)
        spec_text = source.file(SPEC).read_text(encoding="utf-8").replace(
            f"equipment_type: {source.equipment_type}", f"equipment_type: {kind}", 1)
        folder.joinpath(SPEC).write_text(spec_text, encoding="utf-8")
        spec = load_folder_spec(type(source)(folder))
        model = build_template(spec)
        data = dump_model(model)
        total += len(data)
        folder.joinpath(MODEL).write_bytes(data)
        metadata = Metadata(name=kind, equipment_type=kind, version="1.0", owners=["bench <bench>"],
                            changelog=[ChangelogEntry(version="1.0", date=dt.date(2026, 12, 1),
                                                      changes=["Generated."])])
        folder.joinpath(METADATA).write_text(dump_metadata(metadata), encoding="utf-8")
        folder.joinpath(README).write_text(render_readme(model, metadata), encoding="utf-8")
        folder.joinpath(BINDING).write_text(binding_yaml(spec), encoding="utf-8")
    return total


def timed(label: str, paths: list[Path], options: LintOptions, jobs: int | None, count: int) -> float:
    start = time.perf_counter()
    problems = lint_paths(paths, options=options, jobs=jobs)
    elapsed = time.perf_counter() - start
    errors = [p for p in problems if p.severity == "error"]
    print(f"{label:<34} {elapsed:7.2f} s   {elapsed / count * 1000:6.1f} ms/model   "
          f"{len(errors)} errors, {len(problems) - len(errors)} warnings")
    if errors:
        print("  first:", errors[0])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="models-bench-"))
    try:
        catalogue = work / "reference_models"
        size = generate(catalogue, args.models)
        jobs = args.jobs or os.cpu_count() or 1
        print(f"{args.models} models, {size / 1e6:.1f} MB of model.json, {jobs} processes")
        own = timed("own rules (--no-conformance)", [catalogue], LintOptions(conformance=False), args.jobs,
                    args.models)
        cache = work / "cache"
        cold = timed("full, cold (first run, no cache)", [catalogue], LintOptions(cache_dir=cache), args.jobs,
                     args.models)
        warm = timed("full, warm (default lint)", [catalogue], LintOptions(cache_dir=cache), args.jobs, args.models)
        print("goal < 30 s: " + ", ".join(f"{label} {'met' if took < 30 else 'MISSED'}" for label, took in
                                          (("own rules", own), ("full cold", cold), ("default lint (warm)", warm))))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
