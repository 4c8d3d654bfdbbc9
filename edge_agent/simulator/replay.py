"""Replay recorded press signals from CSV files instead of the model.

One file per press: a header row with a time column (``time``, ``Time`` or ``timestamp``) and
signal names of the hydraulic-press spec (any subset), then one row per sample. Times are seconds
(numbers) or ISO 8601 timestamps (naive ones are UTC); they must not decrease. A cell left empty
keeps the column's previous value. At model time *t* (seconds since the start) a press serves the
last row whose time, counted from the first row, is at most *t*; with ``loop`` the file starts over
after its last row, one typical row interval later.

:class:`CsvRecorder` writes such files from a running simulator (``twinedge simulate --record DIR``),
so a run, faults included, can be replayed exactly.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from edge_agent.simulator.model import SIGNALS, SignalValue, UnknownPressError

_TIME_COLUMNS = ("time", "Time", "timestamp")


class ReplayError(ValueError):
    """A replay file is unreadable or malformed; the message names the file, line and column."""


@dataclass(frozen=True)
class ReplayTrack:
    """One press's recording: times in seconds from the first row, and the rows' values."""

    times: tuple[float, ...]
    rows: tuple[dict[str, SignalValue], ...]

    @property
    def period(self) -> float:
        """Length of one loop: the span plus the median row interval (1 s for a single row)."""
        if len(self.times) < 2:
            return 1.0
        gaps = sorted(b - a for a, b in zip(self.times, self.times[1:], strict=False))
        return self.times[-1] + max(gaps[len(gaps) // 2], 1e-6)


def _parse_time(text: str) -> tuple[float, bool]:
    """(seconds, is a timestamp): seconds as given, or a timestamp's seconds since the epoch."""
    try:
        seconds = float(text)
    except ValueError:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp(), True
    if not math.isfinite(seconds):
        raise ValueError(text)
    return seconds, False


def _parse_value(signal: str, text: str) -> SignalValue:
    if signal == "PartQuality":
        value = text.strip().upper()
        if value in ("OK", "0"):
            return "OK"
        if value in ("NG", "1"):
            return "NG"
        raise ValueError(f"{text!r} is not OK or NG (or 0/1)")
    if signal == "CycleCounter":
        number = float(text)
        if not number.is_integer() or number < 0:
            raise ValueError(f"{text!r} is not a whole number of cycles")
        return int(number)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number


def read_csv(path: Path) -> ReplayTrack:
    """Read one press's recording; ReplayError says what is wrong where."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot read the replay file: {exc}") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise ReplayError(f"{path}: the replay file is empty; it needs a header row (time, signal names) and rows")
    header = [h.strip() for h in lines[0]]
    if header[0] not in _TIME_COLUMNS:
        raise ReplayError(f"{path}: line 1: the first column must be the time ('time'), not {header[0]!r}")
    unknown = [h for h in header[1:] if h not in SIGNALS]
    if unknown:
        raise ReplayError(f"{path}: line 1: {', '.join(map(repr, unknown))} not signals of the hydraulic press; "
                          f"use {', '.join(SIGNALS)}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ReplayError(f"{path}: line 1: columns repeated: {', '.join(repeated)}")
    if len(lines) < 2:
        raise ReplayError(f"{path}: the replay file has a header but no rows")
    times: list[float] = []
    rows: list[dict[str, SignalValue]] = []
    first: tuple[float, bool] | None = None
    current: dict[str, SignalValue] = {}
    for number, line in enumerate(lines[1:], start=2):
        if len(line) > len(header):
            raise ReplayError(f"{path}: line {number}: {len(line)} cells but {len(header)} columns")
        cells = [c.strip() for c in line] + [""] * (len(header) - len(line))
        try:
            stamp = _parse_time(cells[0])
        except ValueError:
            raise ReplayError(f"{path}: line {number}: time {cells[0]!r} is neither seconds nor an ISO 8601 "
                              "timestamp") from None
        if first is None:
            first = stamp
        if stamp[1] != first[1]:
            raise ReplayError(f"{path}: line {number}: mixes seconds and timestamps in the time column")
        t = stamp[0] - first[0]
        if times and t < times[-1]:
            raise ReplayError(f"{path}: line {number}: time goes backwards ({cells[0]})")
        for signal, cell in zip(header[1:], cells[1:], strict=True):
            if cell:
                try:
                    current[signal] = _parse_value(signal, cell)
                except ValueError as exc:
                    raise ReplayError(f"{path}: line {number}: column {signal}: {exc}") from None
        times.append(t)
        rows.append({s: current[s] for s in SIGNALS if s in current})
    return ReplayTrack(tuple(times), tuple(rows))


class CsvReplay:
    """Recorded rows served like the model (``step``, ``values``); see the module docstring."""

    def __init__(self, tracks: Mapping[str, ReplayTrack], *, loop: bool = True) -> None:
        if not tracks:
            raise ValueError("a replay needs at least one press's recording")
        self._names = tuple(tracks)
        self._tracks = [tracks[n] for n in self._names]
        self.loop = loop
        self._t = 0.0

    @classmethod
    def from_files(cls, files: Mapping[str, Path], *, loop: bool = True) -> CsvReplay:
        return cls({name: read_csv(path) for name, path in files.items()}, loop=loop)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def time(self) -> float:
        return self._t

    @property
    def finished(self) -> bool:
        """True once every recording has passed its last row (never with ``loop``)."""
        return not self.loop and all(self._t >= tr.times[-1] for tr in self._tracks)

    def step(self, dt: float) -> None:
        if dt <= 0:
            raise ValueError("dt must be positive")
        self._t += dt

    def row_index(self, press: int | str) -> int:
        """Index of the row served now."""
        track = self._tracks[self._index(press)]
        t = self._t
        if self.loop:
            t = math.fmod(t, track.period)
        # A little tolerance: stepping 0.1 ten times gives 0.9999999999999999, which must reach the row at 1.0.
        return max(bisect.bisect_right(track.times, t + 1e-9) - 1, 0)

    def values(self, press: int | str) -> dict[str, SignalValue]:
        track = self._tracks[self._index(press)]
        return dict(track.rows[self.row_index(press)])

    def _index(self, press: int | str) -> int:
        if isinstance(press, str):
            try:
                return self._names.index(press)
            except ValueError:
                raise UnknownPressError(f"no press named {press!r}; the presses are {', '.join(self._names)}") from None
        if not 0 <= press < len(self._names):
            raise UnknownPressError(f"press index {press} is out of range 0..{len(self._names) - 1}")
        return press


class _Tick(Protocol):
    @property
    def model_time(self) -> float: ...

    @property
    def values(self) -> Sequence[Mapping[str, SignalValue]]: ...


class CsvRecorder:
    """Writes every tick it is given (a simulator listener) to ``<directory>/<Press>.csv``: the model time in
    seconds and the signals, in the format :func:`read_csv` reads. Call :meth:`close` at the end."""

    def __init__(self, directory: Path, presses: Sequence[str]) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.paths = [directory / f"{name}.csv" for name in presses]
            self._files: list[IO[str]] = []
            for path in self.paths:
                self._files.append(path.open("w", newline="", encoding="utf-8"))
        except OSError as exc:
            self.close()
            raise ReplayError(f"{directory}: cannot write the recording: {exc.strerror}") from None
        self._writers = [csv.writer(f) for f in self._files]
        for writer in self._writers:
            writer.writerow(["time", *SIGNALS])
        self.rows = 0

    def __call__(self, tick: _Tick) -> None:
        t = repr(round(tick.model_time, 6))
        for writer, values in zip(self._writers, tick.values, strict=True):
            writer.writerow([t, *(_cell(values.get(s)) for s in SIGNALS)])
        self.rows += 1
        if self.rows % 100 == 0:
            self.flush()

    def flush(self) -> None:
        for f in self._files:
            f.flush()

    def close(self) -> None:
        for f in getattr(self, "_files", []):
            f.close()


def _cell(value: SignalValue | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)
