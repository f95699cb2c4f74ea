import os
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


# --- #14 item 10: every number finite and bounded, booleans strict, pairs checked ------------
@pytest.mark.parametrize(
    "text, needles",
    [
        ("sim:\n  speed: .nan\n", ["sim.speed", "finite"]),
        ("risk:\n  max_quote_age_seconds: .inf\n", ["risk.max_quote_age_seconds", "finite"]),
        ("risk:\n  max_contracts_per_order: 1.0e+26\n", ["risk.max_contracts_per_order"]),
        ("risk:\n  max_contracts_per_order: 100000\n", ["risk.max_contracts_per_order",
                                                        "less than or equal to 10000"]),
        ("strategy:\n  vix_max: 1e300\n", ["strategy.vix_max", "out of range"]),
        ("strategy:\n  vix_max: .inf\n", ["strategy.vix_max", "finite"]),
        ("hedge:\n  take_profit_pct: .nan\n", ["hedge.take_profit_pct", "finite"]),
        ("strategy:\n  base_qty: true\n", ["strategy.base_qty", "not true/false"]),
        ("ib:\n  market_data_type: true\n", ["ib.market_data_type", "not true/false"]),
        ("hedge:\n  event_layer: 1\n", ["hedge.event_layer", "true or false"]),
        ("hedge:\n  tail_layer: 'yes'\n", ["hedge.tail_layer", "true or false"]),
        ("risk:\n  daily_loss_limit: 0.04\n  daily_halt_limit: 0.03\n",
         ["daily_halt_limit 0.03", "daily_loss_limit 0.04"]),
        ("store_path: /\n", ["store_path", "not a directory"]),
        ("sim:\n  seed: -1\n", ["sim.seed"]),
        ("sim:\n  speed: 1e7\n", ["sim.speed", "up to 1e6"]),
        ("sim:\n  start: 2026-13-45\n", ["invalid YAML value", "month"]),
    ],
)
def test_numbers_finite_bounded_and_booleans_strict(tmp_path, text, needles):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(p)
    for needle in needles:
        assert needle in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_documented_large_values_still_load(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("clock_jump_seconds: 1.0e9\nsim:\n  speed: max\n  initial_cash: 1.0e9\n")
    s = cfg.load(p)
    assert s.clock_jump_seconds == 1e9 and s.sim.initial_cash == 1e9


def test_store_path_naming_an_existing_directory(tmp_path):
    (tmp_path / "state").mkdir()
    p = tmp_path / "c.yaml"
    p.write_text(f"store_path: {tmp_path / 'state'}\n")
    with pytest.raises(cfg.ConfigError, match="store_path.*not a directory"):
        cfg.load(p)
    p.write_text(f"store_path: {tmp_path / 'state' / 'bot.db'}\n")
    assert cfg.load(p).store_path == tmp_path / "state" / "bot.db"


BAD_FILES = {
    "binary": (bytes(range(256)) * 4, "NUL bytes"),
    "utf32": ("broker: sim\n".encode("utf-32"), "UTF-32"),
    "utf32-no-bom": ("broker: sim\n".encode("utf-32-le"), "NUL bytes"),
    "utf16": ("broker: sim\n".encode("utf-16"), "UTF-16"),
    "latin1": ("strategy:\n  roll_policy: caf\xe9\n".encode("latin-1"), "not UTF-8"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_files_that_are_not_utf8_text(tmp_path, name):
    data, needle = BAD_FILES[name]
    p = tmp_path / f"{name}.yaml"
    p.write_bytes(data)
    with pytest.raises(cfg.ConfigError, match=needle):
        cfg.load(p)


def test_a_utf8_bom_is_fine(tmp_path):
    p = tmp_path / "bom.yaml"
    p.write_bytes("\ufeffbroker: ib\n".encode())
    assert cfg.load(p).broker == "ib"


def test_not_a_regular_file_or_too_big(tmp_path):
    with pytest.raises(cfg.ConfigError, match="not a regular file"):
        cfg.load(tmp_path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(cfg.ConfigError, match="not a regular file"):
        cfg.load(fifo)  # never blocks waiting for a writer
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * cfg.MAX_CONFIG_BYTES + "\n")
    with pytest.raises(cfg.ConfigError, match="not a config file"):
        cfg.load(big)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.yaml"
    p.write_text("broker: sim\n")
    p.chmod(0)
    with pytest.raises(cfg.ConfigError, match="cannot read config file"):
        cfg.load(p)


def test_cli_bad_files_exit_2_with_one_line(tmp_path):
    files = {"binary.yaml": BAD_FILES["binary"][0], "utf32.yaml": BAD_FILES["utf32"][0],
             "root.yaml": b"store_path: /\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    script = ("import sys\nfrom bot.cli import main\n"
              "for f in sys.argv[1:]:\n"
              "    print(main(['run', '--config', f]), flush=True)\n")
    r = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.stdout.split() == ["2", "2", "2"], r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("condorbot: config error:") for line in lines)
    assert "Traceback" not in r.stderr
