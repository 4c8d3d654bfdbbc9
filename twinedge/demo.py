"""`twinedge demo`: the main job on embedded defaults."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Build a hydraulic-press twin and write it as JSON and AASX."""
    raise click.ClickException("not wired yet")
