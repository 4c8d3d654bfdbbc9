"""What an agent process loads: only the code its configured sources need. asyncua (about 37 MB), the twin
server's web framework and the analytics' scikit-learn stay out of `twinedge agent run` for a Modbus line,
which must fit a small factory PC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("asyncua", "fastapi", "uvicorn", "sklearn", "matplotlib", "scipy")

SOURCES = {
    "modbus": ("plc", "{type: modbus, name: plc, host: 127.0.0.1, port: 5020, "
                      "tags: [{signal: oil, address: 0, data_type: float32}]}"),
    "opcua": ("press", "{type: opcua, name: press, endpoint: 'opc.tcp://127.0.0.1:4840', "
                       "nodes: [{signal: oil, node_id: 'ns=2;s=Press1.OilTemperature'}]}"),
}


def config(kind: str) -> str:
    name, source = SOURCES[kind]
    return f"""
sources:
  - {source}
assets:
  - id: press-01
    bindings:
      - {{source: {name}, signal: oil, element: OilTemperature}}
sinks:
  - {{type: timeseries, name: history, path: history.db}}
buffer: {{path: buffer.db}}
"""


PROBE = """
import json, sys
import click
from twinedge.cli import cli
cli.get_command(click.Context(cli), "agent")  # what `twinedge agent run` imports first
from edge_agent.assembly import build_agent
from edge_agent.config import load_config
from pathlib import Path
build_agent(load_config(Path(sys.argv[1])), {}, sys.argv[1])
print(json.dumps(sorted(m for m in sys.argv[2].split(",") if m in sys.modules)))
"""


def loaded(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", PROBE, str(path), ",".join(HEAVY)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("kind", "expected"), [("modbus", []), ("opcua", ["asyncua"])])
def test_an_agent_loads_only_what_its_sources_need(tmp_path: Path, kind: str, expected: list[str]) -> None:
    assert loaded(tmp_path, config(kind)) == expected
