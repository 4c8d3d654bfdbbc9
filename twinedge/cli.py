"""The `twinedge` console command: mounts each area's command group."""

from __future__ import annotations

import click

from aas_models.catalogue.cli import models_group
from aas_models.cli import aas_group
from analytics.cli import analytics
from edge_agent.cli import agent_group
from edge_agent.simulator.cli import simulate
from twin_server.cli import server, server_token
from twinedge import __version__
from twinedge.demo import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twinedge")
def cli() -> None:
    """TwinEdge: shop-floor data into Asset Administration Shell digital twins."""


cli.add_command(aas_group)
cli.add_command(analytics)
cli.add_command(agent_group)
cli.add_command(demo)
cli.add_command(models_group)
cli.add_command(server)
cli.add_command(server_token)
cli.add_command(simulate)


def main() -> None:
    cli()
