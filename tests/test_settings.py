"""augsvc.settings: dataclass settings checked by Param, from plain data and from text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from augsvc.errors import ConfigError
from augsvc.params import Param
from augsvc.settings import build, check_fields, read_text, setting


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.1, kind="float", low=0, high=1, low_open=True, high_open=True)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outer:
    count: int = setting(1, kind="int", low=1)
    verbose: bool = setting(False, kind="bool")
    names: list[str] = setting(kind="strings", default_factory=lambda: ["a"])
    path: str | None = setting(None, kind="string", nullable=True, check=lambda v: v.endswith(".yaml"),
                               allowed="a .yaml file name")
    inner: Inner = field(default_factory=Inner)


FIELDS = {f.name: f for f in dataclasses.fields(Outer)}


def test_build_checks_nested_sections_and_collects_registry_options() -> None:
    built = build(Outer, {"count": 3, "names": "solo", "inner": {"rate": 0.5, "width": 8}})
    assert built == Outer(count=3, names=["solo"], inner=Inner(rate=0.5, options={"width": 8}))
    assert build(Outer, None) == Outer()


@pytest.mark.parametrize(("raw", "message"), [
    ({"cuont": 2}, "cuont: unknown setting (did you mean 'count'?); known: count, verbose,"),
    ({"inner": {"rate": 1.0}}, "inner.rate: out of range (got 1.0); allowed: number in (0, 1)"),
    ({"inner": {"rate": 0}}, "inner.rate: out of range (got 0)"),
    ({"count": True}, "count: must be an integer (got True)"),
    ({"path": "x.json"}, "path: is not allowed (got 'x.json'); allowed: a .yaml file name"),
    ({"inner": [1]}, "inner: expected a mapping, got [1]"),
])
def test_build_names_the_setting_the_value_and_what_is_allowed(raw: dict[str, Any],
                                                                message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(Outer, raw)
    assert message in str(info.value)


def test_a_source_is_named_in_the_message() -> None:
    with pytest.raises(ConfigError, match=r"^count \(from run\.yaml\): out of range"):
        build(Outer, {"count": 0}, source="run.yaml")


@pytest.mark.parametrize(("name", "text", "value"), [
    ("count", " 7 ", 7), ("verbose", "true", True), ("verbose", "0", False),
    ("names", "a, b,,c", ["a", "b", "c"]), ("path", "conf.yaml", "conf.yaml"),
])
def test_text_is_parsed_by_kind(name: str, text: str, value: Any) -> None:
    assert read_text(FIELDS[name], text, f"${name.upper()}") == value


def test_text_that_does_not_parse_is_refused_with_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^\$COUNT: must be an integer \(got 'many'\)"):
        read_text(FIELDS["count"], "many", "$COUNT")
    with pytest.raises(ConfigError, match=r"must be true or false \(got 'yes please'\)"):
        read_text(FIELDS["verbose"], "yes please", "--verbose")


def test_check_fields_catches_a_dataclass_built_directly() -> None:
    check_fields(Outer(count=2))
    with pytest.raises(ConfigError, match=r"^count: out of range \(got 0\)"):
        check_fields(Outer(count=0))


def test_open_bounds_and_integer_lists_in_param() -> None:
    def fail(message: str, value: Any) -> ValueError:
        return ValueError(message)

    rate = Param("rate", "float", low=0, high=1, low_open=True, high_open=True)
    assert rate.allowed() == "number in (0, 1)"
    assert rate.validate(0.5, fail) == 0.5
    for bad in (0, 1):
        with pytest.raises(ValueError, match="out of range"):
            rate.validate(bad, fail)
    sizes = Param("sizes", "ints", low=1)
    assert sizes.validate([3, 5.0], fail) == (3, 5)
    for bad in ([], [3, 0], [2.5], "3"):
        with pytest.raises(ValueError):
            sizes.validate(bad, fail)
