"""Typed errors a user can cause with an AAS file, each carrying located problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, which rule it breaks and what to do about it."""

    file: str
    where: str
    rule: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        level = "" if self.severity == "error" else f" {self.severity}:"
        return f"{self.file}:{where}{level} [{self.rule}] {self.message}"


class AasError(Exception):
    """Base of every error caused by AAS input."""


class AasFileError(AasError):
    """A file could not be read as an AAS environment."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LossError(AasError):
    """A conversion would drop content; raised instead of dropping it silently."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def field_path(loc: Sequence[int | str]) -> str:
    """A Pydantic error location as a user reads it in a config file: ``assets[0].bindings[2].element``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
