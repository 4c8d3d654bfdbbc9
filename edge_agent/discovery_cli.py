"""`twinedge agent discover`: the command line of tag discovery (`edge_agent.discovery`), which it imports
only when it runs (asyncua is a large import that `agent run` without OPC UA sources does without)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from pydantic import ValidationError

from aas_models.equipment import SPECS_DIR, load_spec
from aas_models.errors import AasError


@click.group(name="discover")
def discover_group() -> None:
    """Browse a device and print a draft agent config (sources, optionally bindings) to edit."""


@discover_group.command(name="opcua")
@click.argument("endpoint")
@click.option("--root", default="i=85", show_default=True, help="Node id to start from (i=85: the Objects folder).")
@click.option("--depth", default=6, show_default=True, type=click.IntRange(1, 64), help="Levels below the root.")
@click.option("--max-nodes", default=5000, show_default=True, type=click.IntRange(1),
              help="Stop after this many variables.")
@click.option("--include-standard", is_flag=True, help="Also list namespace 0 (the Server object and such).")
@click.option("--name", "source_name", help="Source name in the config (default: from the host name).")
@click.option("--asset", help="Also bind the nodes to this asset id's signals (matched by name and unit).")
@click.option("--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Equipment spec for --asset (default: the built-in hydraulic press).")
@click.option("--security-policy", type=click.Choice(["None", "Basic256Sha256"]), default="None",
              show_default=True)
@click.option("--security-mode", type=click.Choice(["None", "Sign", "SignAndEncrypt"]), default=None,
              help="Default: None without a policy, SignAndEncrypt with Basic256Sha256.")
@click.option("--certificate", type=click.Path(path_type=Path, dir_okay=False), help="Client certificate.")
@click.option("--private-key", type=click.Path(path_type=Path, dir_okay=False), help="Its private key.")
@click.option("--server-certificate", type=click.Path(path_type=Path, dir_okay=False),
              help="Server certificate to trust.")
@click.option("--username")
@click.option("--password-env", help="Environment variable holding the password.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds per request.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the YAML here instead of printing it.")
def discover_opcua_command(endpoint: str, root: str, depth: int, max_nodes: int, include_standard: bool,
                           source_name: str | None, asset: str | None, spec_file: Path | None,
                           security_policy: str, security_mode: str | None, certificate: Path | None,
                           private_key: Path | None, server_certificate: Path | None, username: str | None,
                           password_env: str | None, timeout: float, output: Path | None) -> None:
    """Browse the OPC UA server at ENDPOINT (opc.tcp://host:port) and print its variables as YAML."""
    from edge_agent.connectors.opcua_config import OpcUaConnection
    from edge_agent.discovery import DiscoveryError, default_source_name, discover_opcua, render_opcua_yaml

    if security_mode is None:
        security_mode = "None" if security_policy == "None" else "SignAndEncrypt"
    try:
        conn = OpcUaConnection.model_validate({
            "endpoint": endpoint, "security_policy": security_policy, "security_mode": security_mode,
            "certificate": certificate, "private_key": private_key, "server_certificate": server_certificate,
            "username": username, "password_env": password_env, "timeout": timeout})
    except ValidationError as exc:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    spec = None
    if asset is not None:
        try:
            spec = load_spec(spec_file or SPECS_DIR / "hydraulic-press.yaml")
        except AasError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        found = asyncio.run(discover_opcua(conn, root, depth, max_nodes=max_nodes,
                                           include_standard=include_standard))
    except DiscoveryError as exc:
        raise click.ClickException(str(exc)) from None
    text = render_opcua_yaml(found, conn, source_name or default_source_name(endpoint), asset=asset, spec=spec,
                             spec_path=spec_file)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        usable = sum(1 for n in found.nodes if n.problem is None)
        click.echo(f"wrote {output}: {len(found.nodes)} variables, {usable} readable", err=True)

