"""Param: what one value may be (kind, bounds, choices), checked with a message saying what is allowed.

The one schema of augsvc: a transform's parameters in a pipeline spec, the server's settings,
a training run's config and the training models' options are all described and checked by it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from augsvc.errors import SpecError, did_you_mean

__all__ = ["REQUIRED", "Param", "ParamKind", "is_number", "to_jsonable"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a parameter that has no default and must be given."""

ParamKind = Literal["float", "int", "bool", "choice", "range", "pair", "floats", "ints", "string",
                   "strings"]
ScalarRule = Literal["symmetric", "point", "none"]


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):  # JSON integers are unbounded; past 2**1000 float() overflows
        return abs(value) <= 2**1000
    return isinstance(value, float) and math.isfinite(value)


@dataclass(frozen=True)
class Param:
    """Schema of one transform parameter: its type, default and allowed values.

    ``range`` parameters take a pair ``[lo, hi]``; a single number is widened by ``scalar``:
    ``symmetric`` gives ``(-x, x)``, ``point`` gives ``(x, x)``, ``none`` refuses it.
    """

    name: str
    kind: ParamKind
    default: Any = REQUIRED
    doc: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    integer: bool = False
    odd: bool = False
    scalar: ScalarRule = "none"
    nullable: bool = False
    low_open: bool = False  # ``low`` itself is not allowed (a learning rate > 0)
    high_open: bool = False  # ``high`` itself is not allowed (a dropout rate < 1)

    def allowed(self) -> str:
        """Describe the accepted values, for error messages and schemas."""
        bounds = (f"{'(' if self.low_open else '['}{_fmt(self.low, negative=True)}, "
                  f"{_fmt(self.high)}{')' if self.high_open else ']'}")
        num = "integer" if self.integer else "number"
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("string", "strings"):
            text = "a string" if self.kind == "string" else "a list of strings"
            return f"{text}, or null" if self.nullable else text
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
            return f"{text}, or null" if self.nullable else text
        if self.kind in ("float", "int"):
            return f"{'integer' if self.kind == 'int' else 'number'} in {bounds}"
        if self.kind == "range":
            odd = "odd " if self.odd else ""
            scalar = {"symmetric": " or one number x for [-x, x]", "point": " or one number",
                      "none": ""}[self.scalar]
            return f"[lo, hi] with lo <= hi, {odd}{num}s in {bounds}{scalar}"
        if self.kind == "pair":
            return f"[a, b] of {num}s in {bounds}"
        if self.kind == "ints":
            return f"a non-empty list of integers in {bounds}"
        text = f"a {num} or a list of {num}s (one per channel) in {bounds}"
        return f"{text}, or null" if self.nullable else text

    def describe(self) -> dict[str, Any]:
        """A JSON-able schema of this parameter (for listings and the service)."""
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "doc": self.doc,
                               "allowed": self.allowed(), "required": self.default is REQUIRED}
        if self.default is not REQUIRED:
            out["default"] = to_jsonable(self.default)
        if self.low is not None:
            out["min"] = self.low
        if self.high is not None:
            out["max"] = self.high
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def validate(self, value: Any, fail: Callable[[str, Any], SpecError]) -> Any:
        """Return ``value`` normalised (tuples for pairs), or raise what ``fail`` builds."""
        if value is None and self.nullable:
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise fail("must be true or false", value)
            return value
        if self.kind == "string":
            if not isinstance(value, str) or not value:
                raise fail("must be a non-empty string", value)
            return value
        if self.kind == "strings":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise fail("must be a list of strings", value)
            return tuple(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise fail(f"unknown value{did_you_mean(value, self.choices)}", value)
            return value
        if self.kind in ("float", "int"):
            return self._number(value, fail, integer=self.kind == "int")
        if self.kind == "ints":
            if not isinstance(value, list | tuple) or not value:
                raise fail("must be a non-empty list of integers", value)
            return tuple(self._number(v, fail, integer=True, whole=value) for v in value)
        if self.kind == "floats":
            if isinstance(value, list | tuple):
                if not value:
                    raise fail("must not be empty", value)
                return tuple(self._number(v, fail, integer=False, whole=value) for v in value)
            return self._number(value, fail, integer=False)
        if self.kind == "range" and is_number(value):
            if self.scalar == "none":
                raise fail("must be a pair [lo, hi]", value)
            if self.scalar == "symmetric":
                if value < 0:
                    raise fail("a single number x means [-x, x], so it must be >= 0", value)
                value = (-value, value)
            else:
                value = (value, value)
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise fail("must be a pair [a, b]", value)
        pair = tuple(self._number(v, fail, integer=self.integer, whole=value) for v in value)
        if self.kind == "range":
            if pair[0] > pair[1]:
                raise fail("lo must be <= hi", value)
            if self.odd and any(int(v) % 2 == 0 for v in pair):
                raise fail("kernel sizes must be odd", value)
        return pair

    def _number(self, value: Any, fail: Callable[[str, Any], SpecError], *, integer: bool,
                whole: Any = None) -> Any:
        shown = value if whole is None else whole
        if integer:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail("must be an integer", shown)
        elif not is_number(value):
            raise fail("must be a finite number", shown)
        if integer and abs(value) > 2**63:  # also keeps float() and messages away from huge ints
            raise fail("out of range", shown if abs(value) < 10**30 else "a huge integer")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise fail("out of range", shown)
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise fail("out of range", shown)
        return value if integer else float(value)


def _fmt(bound: float | None, negative: bool = False) -> str:
    if bound is None:
        return "-inf" if negative else "inf"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def to_jsonable(value: Any) -> Any:
    """Tuples to lists, numpy scalars and arrays to Python values, recursively."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
