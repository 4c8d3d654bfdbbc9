"""`twinedge demo`: the main job on embedded defaults (for now: build and write one press twin)."""

from __future__ import annotations

from pathlib import Path

import click
from aas_core3 import types as aas

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.errors import AasError
from aas_models.files import save
from aas_models.package import AasPackage
from aas_models.twin import build_twin
from aas_models.validation import validate_package


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("twinedge-data"),
              show_default=True, help="Where the twin files are written.")
@click.option("--asset-id", default="press-01", show_default=True, help="The press's asset id.")
@click.option("--spec", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=SPECS_DIR / "hydraulic-press.yaml", show_default="hydraulic press 200 t",
              help="Equipment spec (YAML) to build the twin from.")
def demo(data_dir: Path, asset_id: str, spec: Path) -> None:
    """Build the digital twin of a hydraulic press, validate it, write it as AAS JSON and AASX."""
    try:
        equipment = load_spec(spec)
        environment = build_twin(equipment, asset_id, serial_number=f"SN-{asset_id}")
    except AasError as exc:
        raise click.ClickException(str(exc)) from None
    package = AasPackage(environment)
    problems = validate_package(package, f"twin of {asset_id}")
    for problem in problems:
        click.echo(str(problem), err=True)
    if any(p.severity == "error" for p in problems):
        raise click.ClickException("the built twin is not valid; nothing written")

    data_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"Twin of {asset_id!r} ({equipment.equipment_type} {equipment.version}):")
    for shell in environment.asset_administration_shells or []:
        click.echo(f"  shell      {shell.id}")
    for submodel in environment.submodels or []:
        count = sum(1 for node in submodel.descend() if isinstance(node, aas.SubmodelElement))
        click.echo(f"  submodel   {submodel.id_short:<20} {count:>4} elements  {submodel.id}")
    click.echo(f"  concepts   {len(environment.concept_descriptions or [])} concept descriptions")
    for suffix in (".json", ".aasx"):
        target = data_dir / f"{asset_id}{suffix}"
        save(package, target)
        click.echo(f"wrote {target} ({target.stat().st_size} bytes)")
    click.echo(f"valid: 0 errors, {len(problems)} warnings (check again: twinedge aas validate {data_dir}/*)")
