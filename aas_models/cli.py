"""`twinedge aas ...`: validate and convert AAS files."""

from __future__ import annotations

import mimetypes
import sys
from pathlib import Path

import click
from aas_core3 import jsonization

from aas_models.errors import AasError, AasFileError, LossError, Problem
from aas_models.files import format_of, load, read_package, write_package
from aas_models.package import AasPackage, PackagePart
from aas_models.validation import validate_file


@click.group(name="aas")
def aas_group() -> None:
    """Validate and convert AAS files (.json, .xml, .aasx; metamodel 3.0)."""


@aas_group.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors too.")
def validate(files: tuple[Path, ...], strict: bool) -> None:
    """Check FILES against the metamodel 3.0 constraints and TwinEdge's lint rules.

    Prints one line per problem (file, idShortPath, rule, what to do) and exits with 1 if any
    file has an error (or, with --strict, a warning).
    """
    failed = 0
    for path in files:
        problems = validate_file(path)
        for problem in problems:
            click.echo(str(problem))
        errors = sum(1 for p in problems if p.severity == "error" or strict)
        warnings = len(problems) - errors
        if errors:
            failed += 1
        click.echo(f"{path}: {'FAILED' if errors else 'ok'} ({errors} errors, {warnings} warnings)", err=True)
    if failed:
        sys.exit(1)


@aas_group.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--files-dir", type=click.Path(path_type=Path, file_okay=False),
              help="From .aasx: extract the package's files here. To .aasx: embed every file under this "
                   "folder, named by its path relative to it (e.g. aasx/files/manual.pdf).")
def convert(source: Path, target: Path, files_dir: Path | None) -> None:
    """Convert SOURCE to TARGET; the formats follow the extensions (.json, .xml, .aasx).

    Nothing is dropped silently: if TARGET cannot hold everything SOURCE has, the command refuses
    and names what it cannot keep. The written file is read back and compared before it is kept.
    """
    try:
        package = load(source)
        fmt = format_of(target)
        if files_dir is not None and fmt != "aasx" and package.parts():
            _extract(package, files_dir)
            package = AasPackage(package.environment)
        elif files_dir is not None and fmt == "aasx":
            package.files.extend(_collect(files_dir))
        data = write_package(package, fmt, str(target))
        _check_round_trip(package, read_package(data, fmt, str(target)), str(target))
    except AasError as exc:
        problems = exc.problems if isinstance(exc, AasFileError | LossError) else []
        for problem in problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"not converted: {source} -> {target}") from None
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    click.echo(f"{source} -> {target} ({len(data)} bytes)")


def _check_round_trip(before: AasPackage, after: AasPackage, name: str) -> None:
    if jsonization.to_jsonable(before.environment) != jsonization.to_jsonable(after.environment):
        raise LossError([Problem(name, "", "convert-loss", "the written file does not read back equal; "
                                                           "please report this file")])
    lost = {p.name for p in before.parts()} - {p.name for p in after.parts()}
    if lost:
        raise LossError([Problem(name, part, "convert-loss", "package file would be lost") for part in sorted(lost)])


def _extract(package: AasPackage, folder: Path) -> None:
    for part in package.parts():
        dest = (folder / part.name.lstrip("/")).resolve()
        if not dest.is_relative_to(folder.resolve()):
            raise LossError([Problem(str(folder), part.name, "convert-path", "part name escapes the folder")])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(part.data)
        click.echo(f"extracted {part.name} -> {dest}", err=True)


def _collect(folder: Path) -> list[PackagePart]:
    return [
        PackagePart("/" + path.relative_to(folder).as_posix(),
                    mimetypes.guess_type(path.name)[0] or "application/octet-stream", path.read_bytes())
        for path in sorted(folder.rglob("*")) if path.is_file()
    ]
