import dataclasses
from typing import Literal

import pytest

from textok.config import ConfigError, apply_overrides, diff_configs, from_dict, load_yaml, to_dict


@dataclasses.dataclass
class Inner:
    num_tokens: int = 8
    kind: Literal["a", "b"] = "a"


@dataclasses.dataclass
class Outer:
    model: Inner = dataclasses.field(default_factory=Inner)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    name: str | None = None


def test_round_trip_and_dotted_overrides():
    data = apply_overrides(to_dict(Outer()), ["model.num_tokens=16", "lr=3e-4", "betas=[0.5, 0.9]", "name=run1"])
    cfg = from_dict(Outer, data)
    assert cfg == Outer(Inner(16, "a"), 3e-4, (0.5, 0.9), "run1")


@pytest.mark.parametrize("override, message", [
    ("model.num_tokens=abc", "Outer.model.num_tokens must be an integer"),
    ("model.kind=c", "Outer.model.kind must be one of"),
    ("model.width=3", "unknown field"),
    ("lr", "must look like key.subkey=value"),
])
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, apply_overrides(to_dict(Outer()), [override]))


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")


def test_diff_configs_names_fields():
    a, b = to_dict(Outer()), to_dict(Outer(Inner(num_tokens=4)))
    assert diff_configs(a, b) == ["model.num_tokens: 8 != 4"]
