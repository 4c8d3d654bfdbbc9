"""Tag discovery: browse an OPC UA server and print a draft agent config, so nobody types node ids.

``twinedge agent discover opcua opc.tcp://press1:4840 [--root NODE] [--depth N] [--asset ID]``
walks the server's hierarchy from ``--root`` (default the Objects folder, ``i=85``) down ``--depth``
levels and prints YAML that `edge_agent.config` accepts as it is:

* a ``sources`` entry with one node per variable found, with the browse path, data type, unit,
  EURange and description as a comment above it, and the signal name made from the browse path
  (``Press1.OilTemperature``). Variables the connector cannot read as a single value (arrays,
  structures, dates, no read access) are listed too, commented out, with the reason.
* with ``--asset``, an ``assets`` entry binding the nodes to the signals of an equipment spec
  (``--spec``, default the built-in hydraulic press) matched by browse name, display name,
  description and unit; a spec signal without a match is listed as a comment to bind by hand.

Namespace 0 (the standard's own nodes, such as the Server object) is skipped when browsing from
the Root or Objects folder, unless ``--include-standard``. Browsing is batched: one Browse request
per level (and BrowseNext for long lists) and a few Read requests for all attributes.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.ua_utils import data_type_to_variant_type
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

from aas_models.equipment import EquipmentSpec, SignalSpec
from edge_agent.connectors.opcua import (
    OpcUaConfigError,
    OpcUaConnection,
    close_client,
    describe_error,
    open_client,
    prepare,
)

__all__ = [
    "DiscoveredNode",
    "Discovery",
    "DiscoveryError",
    "Match",
    "browse_opcua",
    "default_source_name",
    "discover_opcua",
    "match_signals",
    "render_opcua_yaml",
]

#: Node ids per Browse or Read request (servers limit MaxNodesPerBrowse / MaxNodesPerRead).
CHUNK = 500
#: References the server may return per node before it hands out a continuation point.
MAX_REFERENCES = 1000

def _standard(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier))


_STANDARD_ROOTS = (_standard(ObjectIds.RootFolder), _standard(ObjectIds.ObjectsFolder))
_HAS_PROPERTY = _standard(ObjectIds.HasProperty)
#: Builtin types whose values the connector passes on (numbers, booleans, strings); Variant: an
#: abstract type (BaseDataType, Number, Integer) whose values may be any of them.
_READABLE = frozenset({
    ua.VariantType.Boolean, ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16,
    ua.VariantType.UInt16, ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64,
    ua.VariantType.UInt64, ua.VariantType.Float, ua.VariantType.Double, ua.VariantType.String,
    ua.VariantType.Variant,
})
_CURRENT_READ = 0x01


class DiscoveryError(Exception):
    """Discovery cannot run as asked (bad root, unreachable server); the message says what to do."""


@dataclass(frozen=True)
class DiscoveredNode:
    """One variable found under the root."""

    node_id: str
    #: OPC UA relative path from the root, e.g. ``/2:Press1/2:OilTemperature``.
    browse_path: str
    #: Proposed signal name: the browse names below the root joined by dots, e.g. ``Press1.OilTemperature``.
    signal: str
    browse_name: str
    display_name: str
    #: The data type's name, e.g. ``Double``, ``Int32``, ``Duration`` or a server's own type.
    data_type: str
    value_rank: int = -1
    description: str = ""
    unit: str | None = None
    eu_range: tuple[float, float] | None = None
    #: Why the connector cannot read this variable as it is; None when it can.
    problem: str | None = None


@dataclass
class Discovery:
    endpoint: str
    root: str
    depth: int
    nodes: list[DiscoveredNode] = field(default_factory=list)
    #: True when --max-nodes stopped the walk before it reached every node.
    truncated: bool = False


@dataclass
class _Item:
    node_id: ua.NodeId
    level: int
    path: tuple[str, ...]
    names: tuple[str, ...]
    browse_name: str
    display_name: str
    is_variable: bool


# --------------------------------------------------------------------------- browsing


async def discover_opcua(conn: OpcUaConnection, root: str = "i=85", depth: int = 6, *,
                         environ: Mapping[str, str] | None = None, max_nodes: int = 5000,
                         include_standard: bool = False) -> Discovery:
    """Connect with `conn` (password from `environ`), browse, disconnect."""
    try:
        password, application_uri = prepare(conn, environ, "discover")
    except OpcUaConfigError as exc:
        raise DiscoveryError(str(exc)) from None
    try:
        client = await open_client(conn, password, application_uri, "TwinEdge tag discovery")
    except Exception as exc:
        raise DiscoveryError(describe_error(conn, exc)) from None
    try:
        return await browse_opcua(client, conn.endpoint, root, depth, max_nodes=max_nodes,
                                  include_standard=include_standard)
    except (ConnectionError, OSError, TimeoutError, UaError) as exc:
        raise DiscoveryError(f"browsing failed: {describe_error(conn, exc)}") from None
    finally:
        await close_client(client, conn.timeout)


async def browse_opcua(client: Client, endpoint: str, root: str = "i=85", depth: int = 6, *,
                       max_nodes: int = 5000, include_standard: bool = False) -> Discovery:
    """Every variable at most `depth` levels below `root` on a connected client, in browse order."""
    try:
        root_id = ua.NodeId.from_string(root)
    except Exception:
        raise DiscoveryError(f"--root {root!r} is not an OPC UA node id: write it like i=85 or "
                             "ns=2;s=Press1") from None
    if depth < 1:
        raise DiscoveryError(f"depth must be at least 1, not {depth}")
    root_item = await _root(client, root_id, endpoint, root)
    found = Discovery(endpoint, root, depth)
    skip_standard = not include_standard and root_id in _STANDARD_ROOTS
    visited = {root_id}
    variables: list[_Item] = [root_item] if root_item.is_variable else []
    #: EURange / EngineeringUnits property nodes of each variable.
    properties: dict[ua.NodeId, dict[str, ua.NodeId]] = {}
    frontier = [root_item]
    while frontier and not found.truncated:
        children: list[_Item] = []
        for item, refs in zip(frontier, await _browse(client, [i.node_id for i in frontier]), strict=True):
            for ref in refs:
                target = ref.NodeId
                if getattr(target, "ServerIndex", 0) or getattr(target, "NamespaceUri", None):
                    continue  # a node on another server
                child = ua.NodeId(target.Identifier, target.NamespaceIndex)
                name = ref.BrowseName.Name or ""
                if ref.ReferenceTypeId == _HAS_PROPERTY:
                    if item.is_variable and name in ("EURange", "EngineeringUnits"):
                        properties.setdefault(item.node_id, {})[name] = child
                    continue  # properties describe their parent; they are no tags of their own
                if item.level >= depth or child in visited:
                    continue
                if skip_standard and child.NamespaceIndex == 0:
                    continue
                visited.add(child)
                new = _Item(child, item.level + 1, (*item.path, f"{ref.BrowseName.NamespaceIndex}:{name}"),
                            (*item.names, name), name, ref.DisplayName.Text or name,
                            ref.NodeClass == ua.NodeClass.Variable)
                children.append(new)
                if new.is_variable:
                    variables.append(new)
                    if len(variables) >= max_nodes:
                        found.truncated = True
                        break
            if found.truncated:
                break
        # Variables on the last level are browsed only for their properties.
        frontier = [c for c in children if c.level < depth or c.is_variable]
    found.nodes = await _describe(client, variables, properties)
    return found


async def _root(client: Client, root_id: ua.NodeId, endpoint: str, root: str) -> _Item:
    values = await _read(client, [(root_id, AttributeIds.NodeClass), (root_id, AttributeIds.BrowseName),
                                  (root_id, AttributeIds.DisplayName)])
    status = values[0].StatusCode
    if status is not None and not status.is_good():
        if status.value == StatusCodes.BadNodeIdUnknown:
            raise DiscoveryError(f"root node {root} is unknown to {endpoint}: give a node id the server has "
                                 "(i=85 is the Objects folder)")
        raise DiscoveryError(f"root node {root} on {endpoint} cannot be read ({status.name})")
    browse_name = values[1].Value.Value if values[1].Value is not None else None
    display = values[2].Value.Value if values[2].Value is not None else None
    name = browse_name.Name if isinstance(browse_name, ua.QualifiedName) else root
    is_variable = values[0].Value is not None and values[0].Value.Value == ua.NodeClass.Variable
    return _Item(root_id, 0, (), (), name, getattr(display, "Text", None) or name, is_variable)


async def _browse(client: Client, node_ids: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references to objects and variables of each node (batched, with BrowseNext)."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(node_ids), CHUNK):
        params = ua.BrowseParameters(RequestedMaxReferencesPerNode=MAX_REFERENCES, NodesToBrowse=[
            ua.BrowseDescription(
                NodeId=node_id,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=_standard(ObjectIds.HierarchicalReferences),
                IncludeSubtypes=True,
                NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable,
                ResultMask=ua.BrowseResultMask.All,
            ) for node_id in node_ids[start:start + CHUNK]])
        results = await client.uaclient.browse(params)
        for node_id, result in zip(node_ids[start:start + CHUNK], results, strict=True):
            if result.StatusCode.value == StatusCodes.BadNoContinuationPoints and len(node_ids) > 1:
                # The server ran out of continuation points for this request: ask for the node alone.
                out.extend(await _browse(client, [node_id]))
                continue
            refs = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                more = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ReleaseContinuationPoints=False, ContinuationPoints=[point]))
                refs.extend(more[0].References or [])
                point = more[0].ContinuationPoint
            out.append(refs)
    return out


async def _read(client: Client, items: Sequence[tuple[ua.NodeId, int]]) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    for start in range(0, len(items), CHUNK):
        params = ua.ReadParameters(NodesToRead=[ua.ReadValueId(NodeId=node_id, AttributeId=attribute)
                                                for node_id, attribute in items[start:start + CHUNK]])
        out.extend(await client.uaclient.read(params))
    return out


def _value(dv: ua.DataValue) -> Any:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return None if dv.Value is None else dv.Value.Value


async def _describe(client: Client, variables: list[_Item],
                    properties: dict[ua.NodeId, dict[str, ua.NodeId]]) -> list[DiscoveredNode]:
    attributes = (AttributeIds.DataType, AttributeIds.ValueRank, AttributeIds.UserAccessLevel,
                  AttributeIds.Description)
    values = await _read(client, [(v.node_id, a) for v in variables for a in attributes])
    prop_items = [(owner, name, node) for owner, props in properties.items() for name, node in props.items()]
    prop_values = await _read(client, [(node, AttributeIds.Value) for _, _, node in prop_items])
    units: dict[ua.NodeId, str] = {}
    ranges: dict[ua.NodeId, tuple[float, float]] = {}
    for (owner, name, _), dv in zip(prop_items, prop_values, strict=True):
        value = _value(dv)
        if name == "EngineeringUnits" and isinstance(value, ua.EUInformation) and value.DisplayName.Text:
            units[owner] = value.DisplayName.Text
        elif name == "EURange" and isinstance(value, ua.Range):
            ranges[owner] = (float(value.Low), float(value.High))
    types = {dt for dt in (_value(values[i * 4]) for i in range(len(variables))) if isinstance(dt, ua.NodeId)}
    kinds, type_names = await _data_types(client, types)
    nodes: list[DiscoveredNode] = []
    taken: set[str] = set()
    for i, item in enumerate(variables):
        data_type, value_rank, access, description = (_value(dv) for dv in values[i * 4:i * 4 + 4])
        kind = kinds.get(data_type) if isinstance(data_type, ua.NodeId) else None
        type_name = type_names.get(data_type, "unknown") if isinstance(data_type, ua.NodeId) else "unknown"
        rank = int(value_rank) if isinstance(value_rank, int) else -1
        problem = None
        if isinstance(access, int) and not access & _CURRENT_READ:
            problem = "not readable by this user (its UserAccessLevel lacks CurrentRead)"
        elif rank >= 0:
            problem = f"an array (ValueRank {rank}); the connector reads single values"
        elif kind is not None and kind not in _READABLE:
            problem = f"its data type {type_name} is not a number, boolean or string"
        nodes.append(DiscoveredNode(
            node_id=item.node_id.to_string(),
            browse_path="/" + "/".join(item.path),
            signal=_signal_name(item.names or (item.browse_name,), taken),
            browse_name=item.browse_name,
            display_name=item.display_name,
            data_type=type_name,
            value_rank=rank,
            description=_description(description, item),
            unit=units.get(item.node_id),
            eu_range=ranges.get(item.node_id),
            problem=problem,
        ))
    return nodes


def _description(text: Any, item: _Item) -> str:
    """The node's description, unless it only repeats the name (asyncua's server does that)."""
    value = getattr(text, "Text", None) or ""
    return "" if value in (item.browse_name, item.display_name) else str(value)


async def _data_types(client: Client, types: set[ua.NodeId]) -> tuple[dict[Any, ua.VariantType], dict[Any, str]]:
    """The builtin type each data type is encoded as, and each type's name."""
    kinds: dict[Any, ua.VariantType] = {}
    names: dict[Any, str] = {}
    own = sorted((t for t in types if t.NamespaceIndex != 0 or t.Identifier not in ObjectIdNames),
                 key=lambda t: t.to_string())
    for dt, dv in zip(own, await _read(client, [(t, AttributeIds.BrowseName) for t in own]), strict=True):
        value = _value(dv)
        names[dt] = value.Name if isinstance(value, ua.QualifiedName) else dt.to_string()
    for dt in types:
        if dt not in names:
            names[dt] = ObjectIdNames[dt.Identifier] if isinstance(dt.Identifier, int) else dt.to_string()
        with contextlib.suppress(UaError, ValueError):  # a type whose base the server does not tell: not judged
            kinds[dt] = await data_type_to_variant_type(client.get_node(dt))
    return kinds, names


_NOT_IN_SIGNAL = re.compile(r"[^A-Za-z0-9_.\-]+")


def _signal_name(names: Sequence[str], taken: set[str]) -> str:
    base = ".".join(_NOT_IN_SIGNAL.sub("_", n).strip("_") or "node" for n in names)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


# --------------------------------------------------------------------------- matching to a spec


@dataclass(frozen=True)
class Match:
    """A spec signal and the node proposed for it; node None when nothing matched."""

    element: str
    node: DiscoveredNode | None
    reason: str
    #: Signals of other nodes that fit as well (several machines under the root, say).
    also: tuple[str, ...] = ()


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


_UNIT_ALIASES = {"degc": "°c", "celsius": "°c", "degreescelsius": "°c", "°c": "°c", "c": "°c", "℃": "°c"}


def _unit(text: str) -> str:
    key = text.casefold().replace(" ", "")
    return _UNIT_ALIASES.get(key, key)


def _texts(value: str | dict[str, str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value.values())


def _score(signal: SignalSpec, node: DiscoveredNode) -> tuple[float, str]:
    """How well `node` fits `signal` (0: not at all) and why."""
    string_signal = signal.value_type == "xs:string"
    if string_signal != (node.data_type == "String"):
        return 0.0, ""
    wanted = {_norm(t) for t in [signal.name, *_texts(signal.preferred_name)]} - {""}
    names = {_norm(node.browse_name), _norm(node.display_name)} - {""}
    if wanted & names:
        score, reason = 3.0, "browse name"
    elif any(len(w) >= 4 and len(n) >= 4 and (w in n or n in w) for w in wanted for n in names):
        score, reason = 2.0, "similar name"
    elif node.description and any(len(w) >= 6 and w in _norm(node.description) for w in wanted):
        score, reason = 1.0, "description"
    else:
        return 0.0, ""
    if signal.unit and node.unit:
        if _unit(signal.unit) != _unit(node.unit):
            return 0.0, ""
        score, reason = score + 0.5, f"{reason} and unit {node.unit}"
    return score, reason


def match_signals(nodes: Sequence[DiscoveredNode], spec: EquipmentSpec) -> list[Match]:
    """One node per spec signal (best first, each node used once), in the spec's order."""
    candidates: list[tuple[float, int, int, str]] = []
    usable = [n for n in nodes if n.problem is None]
    for s, signal in enumerate(spec.signals):
        for n, node in enumerate(usable):
            score, reason = _score(signal, node)
            if score:
                candidates.append((score, s, n, reason))
    chosen: dict[int, tuple[float, int, str]] = {}
    used: set[int] = set()
    for score, s, n, reason in sorted(candidates, key=lambda c: (-c[0], usable[c[2]].browse_path.count("/"),
                                                                 c[1], c[2])):
        if s not in chosen and n not in used:
            chosen[s] = (score, n, reason)
            used.add(n)
    out = []
    for s, signal in enumerate(spec.signals):
        if s in chosen:
            best, n, reason = chosen[s]
            also = tuple(usable[m].signal for score, s2, m, _ in candidates if s2 == s and m != n and score == best)
            out.append(Match(signal.name, usable[n], f"matched by {reason}", also))
        else:
            out.append(Match(signal.name, None, "no node matched"))
    return out


# --------------------------------------------------------------------------- YAML


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_opcua_yaml(found: Discovery, conn: OpcUaConnection, name: str, *,
                      asset: str | None = None, spec: EquipmentSpec | None = None,
                      spec_path: Path | None = None) -> str:
    """A draft agent config: the source with every node found, and with `asset` its bindings to `spec`."""
    usable = [n for n in found.nodes if n.problem is None]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# Draft agent config from `twinedge agent discover opcua` at {stamp}.",
        f"# {found.endpoint}, root {found.root}, depth {found.depth}: {len(found.nodes)} variables, "
        f"{len(usable)} readable as single values.",
    ]
    if found.truncated:
        lines.append(f"# The walk stopped at {len(found.nodes)} variables (--max-nodes): narrow it with --root.")
    lines += [
        "# Edit: rename signals, delete what you do not need; per node you can set mode: poll (with",
        "# poll_interval), sampling_interval (ms), queue_size, deadband: absolute|percent and deadband_value",
        "# (percent needs the node's EURange).",
        "sources:",
        "  - type: opcua",
        f"    name: {_q(name)}",
        f"    endpoint: {_q(conn.endpoint)}",
    ]
    if conn.security_policy != "None":
        lines += [f"    security_policy: {conn.security_policy}", f"    security_mode: {conn.security_mode}"]
    for key in ("certificate", "private_key", "server_certificate", "username", "password_env"):
        value = getattr(conn, key)
        if value is not None:
            lines.append(f"    {key}: {_q(str(value))}")
    if not found.nodes:
        lines.append("    nodes: []  # nothing found: try another --root or a larger --depth")
    else:
        lines.append("    nodes:")
    for node in found.nodes:
        about = [node.browse_path, node.data_type]
        if node.unit:
            about.append(f"unit {node.unit}")
        if node.eu_range:
            about.append(f"EURange {node.eu_range[0]:g}..{node.eu_range[1]:g}")
        if node.description:
            about.append(_q(node.description[:100]))
        if node.problem is not None:
            about.append(f"skipped: {node.problem}")
        lines.append(f"      # {_comment(' | '.join(about))}")
        entry = f"- {{signal: {_q(node.signal)}, node_id: {_q(node.node_id)}}}"
        lines.append(f"      {entry}" if node.problem is None else f"      # {entry}")
    if asset is not None and spec is not None:
        lines += ["assets:", f"  - id: {_q(asset)}"]
        if spec_path is not None:
            lines.append(f"    spec: {_q(str(spec_path))}")
        matches = match_signals(found.nodes, spec)
        lines.append("    bindings:" if any(m.node for m in matches) else "    bindings: []")
        for match in matches:
            if match.node is None:
                lines.append(f"      # {match.element}: {match.reason}; bind it by hand")
            else:
                lines.append(f"      - {{source: {_q(name)}, signal: {_q(match.node.signal)}, "
                             f"element: {match.element}}}  # {match.reason}")
                if match.also:
                    lines.append(f"      #   {match.element} also fits {', '.join(match.also[:5])}"
                                 f"{' ...' if len(match.also) > 5 else ''}: use --root to pick one machine")
    return "\n".join(lines) + "\n"


def default_source_name(endpoint: str) -> str:
    """A source name from the endpoint's host (what `discover` writes when no --name is given)."""
    host = endpoint.removeprefix("opc.tcp://").split("/")[0].rsplit(":", 1)[0]
    return _NOT_IN_SIGNAL.sub("-", host).strip("-") or "opcua"
