"""`twinedge aas convert`: lossless or refused, never silently lossy."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from aas_test_engines import file as ate
from click.testing import CliRunner

from aas_models.aasx import read_aasx, write_aasx
from aas_models.files import load
from aas_models.package import AasPackage, PackagePart
from twinedge.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_every_idta_template_survives_json_aasx_xml_json(idta_templates: list[Path], tmp_path: Path) -> None:
    for template in idta_templates:
        stem = tmp_path / template.stem
        for src, dst in [(template, stem.with_suffix(".aasx")), (stem.with_suffix(".aasx"), stem.with_suffix(".xml")),
                         (stem.with_suffix(".xml"), Path(f"{stem}.back.json"))]:
            code, output = run("aas", "convert", str(src), str(dst))
            assert code == 0, output
        original = json.loads(template.read_bytes())
        assert json.loads(Path(f"{stem}.back.json").read_bytes()) == original, template.name


def test_written_files_pass_the_official_file_checks(idta_templates: list[Path], tmp_path: Path) -> None:
    source = next(t for t in idta_templates if "TimeSeries" in t.name)
    for suffix in (".json", ".xml", ".aasx"):
        target = tmp_path / f"out{suffix}"
        assert run("aas", "convert", str(source), str(target))[0] == 0
        with target.open("rb") as stream:
            if suffix == ".json":
                result = ate.check_json_file(stream)
            elif suffix == ".xml":
                result = ate.check_xml_file(stream)
            else:
                result = ate.check_aasx_file(stream)
        assert result.ok(), suffix


def _package_with_files(template: Path) -> AasPackage:
    package = load(template)
    package.files.append(PackagePart("/aasx/files/manual.pdf", "application/pdf", b"%PDF-1.4\n" + bytes(range(256))))
    package.thumbnail = PackagePart("/aasx/thumbnail.png", "image/png", b"\x89PNG\r\n\x1a\nfake")
    return package


def test_aasx_files_round_trip(idta_templates: list[Path]) -> None:
    package = _package_with_files(idta_templates[0])
    again = read_aasx(write_aasx(package), "mem.aasx")
    assert again.files == package.files
    assert again.thumbnail == package.thumbnail


def test_aasx_to_json_refuses_to_drop_files(idta_templates: list[Path], tmp_path: Path) -> None:
    source = tmp_path / "with-files.aasx"
    source.write_bytes(write_aasx(_package_with_files(idta_templates[0])))
    target = tmp_path / "out.json"
    code, output = run("aas", "convert", str(source), str(target))
    assert code == 1
    assert "/aasx/files/manual.pdf" in output and "/aasx/thumbnail.png" in output
    assert "not converted" in output
    assert not target.exists()


def test_files_dir_extracts_and_embeds_again(idta_templates: list[Path], tmp_path: Path) -> None:
    package = _package_with_files(idta_templates[0])
    source = tmp_path / "with-files.aasx"
    source.write_bytes(write_aasx(package))
    files = tmp_path / "files"
    assert run("aas", "convert", str(source), str(tmp_path / "out.json"), "--files-dir", str(files))[0] == 0
    assert (files / "aasx/files/manual.pdf").read_bytes() == package.files[0].data
    assert run("aas", "convert", str(tmp_path / "out.json"), str(tmp_path / "again.aasx"),
               "--files-dir", str(files))[0] == 0
    again = load(tmp_path / "again.aasx")
    assert {p.name: p.data for p in again.parts()} == {p.name: p.data for p in package.parts()}


def test_unreferenced_parts_of_foreign_packages_are_kept(idta_templates: list[Path]) -> None:
    """A part that no relationship points at is still a file of the package: keep it."""
    data = write_aasx(load(idta_templates[0]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr("aasx/extra/notes.txt", "kept")
    again = read_aasx(buffer.getvalue(), "foreign.aasx")
    assert [(p.name, p.data) for p in again.files] == [("/aasx/extra/notes.txt", b"kept")]


@pytest.mark.parametrize("target", ["out.txt", "out"])
def test_unknown_target_extension_is_refused(idta_templates: list[Path], tmp_path: Path, target: str) -> None:
    code, output = run("aas", "convert", str(idta_templates[0]), str(tmp_path / target))
    assert code == 1 and "use .json, .xml or .aasx" in output


def test_reads_what_basyx_writes_in_3_1(tmp_path: Path) -> None:
    """basyx-python-sdk 2.x writes metamodel 3.1 (XML namespace .../3/1); 3.0 content in it reads."""
    from basyx.aas.adapter.json import read_aas_json_file
    from basyx.aas.adapter.xml import write_aas_xml_file

    from aas_models.equipment import SPECS_DIR, load_spec
    from aas_models.jsonio import dump_json
    from aas_models.twin import build_twin

    twin = dump_json(build_twin(load_spec(SPECS_DIR / "hydraulic-press.yaml"), "press-09"))
    store = read_aas_json_file(io.StringIO(twin.decode()), failsafe=False)
    written = tmp_path / "basyx.xml"
    with written.open("wb") as stream:
        write_aas_xml_file(stream, store)
    assert b"https://admin-shell.io/aas/3/1" in written.read_bytes()
    code, output = run("aas", "convert", str(written), str(tmp_path / "back.json"))
    assert code == 0, output
    ids = {sm["id"] for sm in json.loads(twin)["submodels"]}
    assert {sm["id"] for sm in json.loads((tmp_path / "back.json").read_bytes())["submodels"]} == ids
