"""`twinedge models ...`: author, check, review and use the reference-model catalogue.

The workflow (for integrators new to AAS) is in docs/reference-models.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aas_models import ids
from aas_models.catalogue.diff import diff_models
from aas_models.catalogue.instantiate import agent_config, instantiate_folder
from aas_models.catalogue.layout import MODEL, STATUSES, ModelFolder, discover
from aas_models.catalogue.lint import LintOptions, default_cache_dir, format_report, lint_paths
from aas_models.catalogue.package import package_folder
from aas_models.catalogue.release import release
from aas_models.catalogue.scaffold import build, new_model
from aas_models.catalogue.template import dump_model
from aas_models.errors import AasError
from aas_models.jsonio import load_jsonable

DEFAULT_ROOT = Path("reference_models")


def _fail(exc: AasError) -> click.ClickException:
    for problem in getattr(exc, "problems", []):
        click.echo(str(problem), err=True)
    return click.ClickException(str(exc) if not getattr(exc, "problems", None) else "stopped: see the problems above")


def _one(path: Path) -> ModelFolder:
    folders = discover([path])
    if len(folders) != 1:
        raise click.ClickException(f"{path}: expected one model folder (<type>/<major>.<minor>/{MODEL}), "
                                   f"found {len(folders)}")
    return folders[0]


@click.group(name="models")
def models_group() -> None:
    """Reference models of equipment types: new, build, lint, diff, package, instantiate, release."""


@models_group.command()
@click.argument("equipment_type")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_ROOT, show_default=True,
              help="The catalogue folder.")
@click.option("--version", "version", default=None, help="Version of the new model.  [default: 1.0, or with "
                                                          "--from the next minor version]")
@click.option("--spec", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Start from this equipment spec (YAML) instead of the shipped one or a skeleton.")
@click.option("--from", "source", type=click.Path(path_type=Path, exists=True),
              help="Make a new version of this existing model folder (a fix of a released version).")
@click.option("--owner", "owners", multiple=True, help="Owner, e.g. 'Kim Minji <KAMP> @minji'; repeatable.")
def new(equipment_type: str, root: Path, version: str | None, spec: Path | None, source: Path | None,
        owners: tuple[str, ...]) -> None:
    """Scaffold ROOT/EQUIPMENT_TYPE/VERSION from the shared submodel builders.

    Writes spec.yaml (the source you edit), metadata.yaml (status draft), agent-binding.yaml, and the
    generated model.json and README.md.
    """
    try:
        origin = _one(source) if source else None
        if version is None:
            if origin is not None:
                major, minor = origin.version.split(".")
                version = f"{major}.{int(minor) + 1}"
            else:
                version = "1.0"
        folder = new_model(root, equipment_type, version=version, spec=spec, source=origin,
                           owners=list(owners) or None)
    except AasError as exc:
        raise _fail(exc) from None
    click.echo(f"created {folder.path}: edit spec.yaml and metadata.yaml, then run twinedge models build {folder.path}")


@models_group.command(name="build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
def build_command(paths: tuple[Path, ...]) -> None:
    """Regenerate model.json (from spec.yaml) and README.md in the model folders under PATHS."""
    try:
        for folder in discover(paths):
            written = build(folder)
            click.echo(f"{folder.label}: " + (", ".join(p.name for p in written) if written else "up to date"))
    except AasError as exc:
        raise _fail(exc) from None


@models_group.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--no-conformance", is_flag=True, help="Skip aas-test-engines' file check (the slowest part).")
@click.option("--no-cache", is_flag=True, help="Re-run aas-test-engines on unchanged models too "
                                               "(its findings are cached per model.json content).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors too.")
@click.option("--jobs", "-j", type=int, default=None, help="Parallel processes.  [default: CPU count]")
def lint(paths: tuple[Path, ...], no_conformance: bool, no_cache: bool, strict: bool, jobs: int | None) -> None:
    """Check the model folders under PATHS (default: reference_models/).

    One line per finding (file, idShortPath, rule, fix); exit 1 on any error (with --strict, also on
    warnings). Ids are checked for uniqueness across all folders given.
    """
    options = LintOptions(conformance=not no_conformance, cache_dir=None if no_cache else default_cache_dir())
    problems = lint_paths(list(paths) or [DEFAULT_ROOT], options=options, jobs=jobs)
    for line in format_report(problems):
        click.echo(line)
    errors = sum(1 for p in problems if p.severity == "error" or strict)
    folders = len(discover(list(paths) or [DEFAULT_ROOT]))
    click.echo(f"{folders} models: {'FAILED' if errors else 'ok'} ({errors} errors, {len(problems) - errors} "
               "warnings)", err=True)
    if errors:
        sys.exit(1)


def _model(path: Path) -> dict[str, object]:
    file = path if path.is_file() else _one(path).file(MODEL)
    try:
        data = load_jsonable(file.read_bytes(), str(file))
    except AasError as exc:
        raise _fail(exc) from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{file}: not an AAS environment")
    return data


@models_group.command()
@click.argument("old", type=click.Path(path_type=Path, exists=True))
@click.argument("new", type=click.Path(path_type=Path, exists=True))
def diff(old: Path, new: Path) -> None:
    """Semantic diff of two model versions (folders or model.json files).

    Lists elements added, removed and changed, each breaking or not, and the version bump the
    changes need; exits 1 if NEW's version is smaller than that.
    """
    result = diff_models(_model(old), _model(new))
    for line in result.report():
        click.echo(line)
    if not result.version_ok:
        sys.exit(1)


@models_group.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The .aasx file to write.")
def package(path: Path, output: Path) -> None:
    """Package one model version as AASX (with its README and example binding)."""
    try:
        data = package_folder(_one(path))
    except AasError as exc:
        raise _fail(exc) from None
    output.write_bytes(data)
    click.echo(f"{path} -> {output} ({len(data)} bytes)")


@models_group.command(name="instantiate")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--asset-id", required=True, help="Id of the machine, e.g. press-01 (the agent uses the same).")
@click.option("--serial", help="Serial number of the machine (Nameplate and specificAssetIds).")
@click.option("--year", help="Year of construction (Nameplate).")
@click.option("--line", help="Production line the machine stands in (specificAssetId `line`; the dashboards "
                             "group by it).")
@click.option("--id-base", default=ids.DEFAULT_ID_BASE, show_default=True, help="Base of the twin's ids.")
@click.option("--timeseries-endpoint", help="URL of the time-series endpoint the TimeSeries segments name.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The twin to write (.json).")
@click.option("--agent-config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write an edge-agent config (YAML) that binds the controller to this twin.")
@click.option("--endpoint", help="Controller address for the agent config (opc.tcp://host:port or host:port).")
@click.option("--twin-server", help="API base of the twin server for the agent config, e.g. "
                                    "http://10.0.0.5:8081/api/v3.0.  [default: the agent's]")
def instantiate_command(path: Path, asset_id: str, serial: str | None, year: str | None, line: str | None, id_base: str,
                        timeseries_endpoint: str | None, output: Path, config_path: Path | None,
                        endpoint: str | None, twin_server: str | None) -> None:
    """Make the twin of one machine from a model version (its folder).

    The twin's ids follow docs/identifiers.md for ASSET_ID, so with --agent-config the edge agent
    binds the controller to it as written: `twinedge agent run agent.yaml`.
    """
    try:
        folder = _one(path)
        twin = instantiate_folder(folder, asset_id, serial_number=serial, year_of_construction=year,
                                  id_base=id_base, timeseries_endpoint=timeseries_endpoint, line=line)
        config = agent_config(folder, asset_id, id_base=id_base, endpoint=endpoint,
                              twin_server=twin_server) if config_path else None
    except AasError as exc:
        raise _fail(exc) from None
    except ids.IdError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(dump_model(twin))
        if config_path is not None and config is not None:
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(config, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    click.echo(f"{folder.label} -> {output} (twin of {asset_id})")
    if config_path is not None and config is not None:
        click.echo(f"agent config -> {config_path}")


@models_group.command(name="release")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--to", "target", type=click.Choice(STATUSES), help="Target status.  [default: the next stage]")
@click.option("--no-conformance", is_flag=True, help="Skip aas-test-engines in the lint gate.")
def release_command(path: Path, target: str | None, no_conformance: bool) -> None:
    """Move a model version to its next review stage (draft, in-review, approved, released, deprecated).

    Refuses moves the workflow does not allow and any change to a released version (make a new
    version with `twinedge models new TYPE --from PATH`).
    """
    try:
        folder = _one(path)
        metadata = release(folder, target, options=LintOptions(conformance=not no_conformance))
    except AasError as exc:
        raise _fail(exc) from None
    click.echo(f"{folder.label}: {metadata.status}")

