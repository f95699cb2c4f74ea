import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot import config as cfg

ROOT = Path(__file__).resolve().parents[1]


def _keys(model: type, prefix: str = "") -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, cfg.BaseModel):
            out |= _keys(ann, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def _flatten(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


def test_shipped_config_lists_every_setting_with_a_comment():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert _flatten(raw) == _keys(cfg.Settings)
    for line in (ROOT / "config.yaml").read_text().splitlines():
        if re.match(r"^\s*\w+:\s*\S", line):
            assert "#" in line, f"setting without a comment: {line!r}"


def test_shipped_config_equals_model_defaults():
    assert cfg.load(ROOT / "config.yaml") == cfg.Settings()


@pytest.mark.parametrize(
    "text, needles",
    [
        ("strategy:\n  short_delta: 1.5\n", ["strategy.short_delta", "1.5"]),
        ("strategy:\n  short_delta: high\n", ["strategy.short_delta", "'high'"]),
        ("strategy:\n  shortdelta: 0.16\n", ["unknown key", "strategy.shortdelta"]),
        ("brokr: sim\n", ["unknown key", "brokr"]),
        ("sim:\n  speed: -3\n", ["sim.speed", "-3"]),
        ("strategy:\n  short_delta: 0.25\n", ["short_delta 0.25", "short_delta_max 0.2"]),
        ("strategy: [1, 2]\n", ["strategy"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        ("strategy:\n  short_delta: [0.1\n", ["invalid YAML", "line"]),
    ],
)
def test_bad_config_names_key_and_value(tmp_path, text, needles):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(p)
    for needle in needles:
        assert needle in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(cfg.ConfigError, match="not found"):
        cfg.load(tmp_path / "nope.yaml")


def test_empty_file_means_defaults(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert cfg.load(p) == cfg.Settings()


def test_cli_bad_config_exits_2_naming_the_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("strategy:\n  short_delta: 1.5\n")
    r = subprocess.run([sys.executable, "-m", "bot", "run", "--config", str(p)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert "short_delta" in r.stderr and "1.5" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_cli_overrides_are_validated(tmp_path):
    s = cfg.with_overrides(cfg.Settings(), speed="max", days=3, scenario=None)
    assert s.sim.speed == "max" and s.sim.days == 3 and s.sim.scenario == "calm"
    with pytest.raises(cfg.ConfigError, match="sim.days"):
        cfg.with_overrides(cfg.Settings(), days=0)
