"""The `twinedge` console command: mounts each area's command group.

Each group is imported when it is used, not at start-up: `twinedge agent run` on a small factory PC then
loads the agent's code only, not the twin server's web framework or the analytics' scikit-learn (each
tens of MB of memory).
"""

from __future__ import annotations

import importlib

import click

from twinedge import __version__

#: Command name -> "module:attribute" of its click command or group.
COMMANDS = {
    "aas": "aas_models.cli:aas_group",
    "agent": "edge_agent.cli:agent_group",
    "analytics": "analytics.cli:analytics",
    "demo": "twinedge.demo:demo",
    "models": "aas_models.catalogue.cli:models_group",
    "server": "twin_server.cli:server",
    "server-token": "twin_server.cli:server_token",
    "simulate": "edge_agent.simulator.cli:simulate",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (`--help` imports them all, for their help)."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module, attribute = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twinedge")
def cli() -> None:
    """TwinEdge: shop-floor data into Asset Administration Shell digital twins."""


def main() -> None:
    cli()
