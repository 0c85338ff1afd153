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


def test_yaml_base_inheritance_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("model: {num_tokens: 8, kind: a}\nlr: 0.1\nbetas: [0.1, 0.2]\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nmodel: {kind: b}\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nbetas: [0.5]\n")
    data = load_yaml(tmp_path / "sub" / "leaf.yaml")
    # sections merge key by key; lists and scalars are replaced; "base" itself is gone
    assert data == {"model": {"num_tokens": 8, "kind": "b"}, "lr": 0.1, "betas": [0.5]}


def test_yaml_base_cycles_and_missing_bases_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nlr: 1\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_yaml(tmp_path / "a.yaml")
    (tmp_path / "self.yaml").write_text("base: self.yaml\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_yaml(tmp_path / "self.yaml")
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml not found"):
        load_yaml(tmp_path / "c.yaml")


def test_apply_preset_fills_then_overrides():
    from textok.config import apply_preset

    presets = {"small": {"num_tokens": 4, "kind": "b"}}
    assert apply_preset({"preset": "small", "kind": "a"}, presets, "toy") == {"num_tokens": 4, "kind": "a"}
    assert apply_preset({"kind": "a"}, presets, "toy") == {"kind": "a"}
    with pytest.raises(ConfigError, match="model.preset: unknown toy preset 'big'"):
        apply_preset({"preset": "big"}, presets, "toy", where="model")
