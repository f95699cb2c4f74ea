"""config.yaml -> validated, typed settings, with one clear message for bad input.

`load(path)` returns `Settings` or raises `ConfigError` whose text (one line) names the key
and value. The CLI turns a ConfigError into exit status 2 without a traceback.

Every number is finite and bounded (no NaN or inf, no 1e26 contracts: a field without its
own upper bound is held to |x| <= 1e9), booleans are true/false only and never stand in for
numbers, limits that come in pairs are checked against each other, and the file itself must
be a regular UTF-8 text file of sensible size.
"""

from __future__ import annotations

import math
import stat
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from strategies.params import HedgeParams, StrategyParams


class ConfigError(Exception):
    """Bad configuration; the message is meant for the operator as it is."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LogSettings(_Section):
    dir: Path = Path("logs")
    file: str = "condorbot.jsonl"
    max_bytes: int = Field(10_000_000, ge=10_000, le=10**12)
    backups: int = Field(5, ge=0, le=100)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SimSettings(_Section):
    scenario: str = "calm"
    seed: int = Field(7, ge=0, le=2**32 - 1)
    speed: float | Literal["max"] = 60.0
    days: int | None = Field(None, ge=1, le=100_000)
    start: date = date(2026, 1, 5)
    initial_cash: float = Field(1_000_000.0, gt=0, le=1e12)
    commission_per_contract: float = Field(0.65, ge=0, le=100)
    fill_ratio: float = Field(1.0, gt=0, le=1, description="share of remaining qty per fill")
    # the one fill model (bot.sim.fills): p = a^shape x leg_factor^(legs-1) / (1 + w/scale)
    fill_shape: float = Field(2.0, gt=0, description="p rises as (share of mid->natural)^shape")
    fill_leg_factor: float = Field(0.9, gt=0, le=1, description="p multiplier per extra leg")
    fill_spread_scale: float = Field(2.0, gt=0, description="combo half-spread (points) halving p")

    @field_validator("speed")
    @classmethod
    def _speed(cls, v: Any) -> Any:
        if v != "max" and not 0 < float(v) <= 1e6:
            raise ValueError("speed must be a positive number up to 1e6, or 'max'")
        return v


class IBSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(4002, ge=1, le=65535)
    client_id: int = Field(17, ge=0, le=2**31 - 1)
    timeout: float = Field(10.0, gt=0, le=3600)
    market_data_type: Literal[1, 2, 3, 4] = 1
    max_msgs_per_sec: float = Field(40.0, gt=0, le=50)


class RiskSettings(_Section):
    max_contracts_per_order: int = Field(20, ge=1, le=10_000)
    max_contracts_total: int = Field(80, ge=1, le=100_000)
    max_campaign_loss_pct: float = Field(0.10, gt=0, le=1)
    margin_cap_pct: float = Field(0.50, gt=0, le=1)
    min_cushion: float = Field(0.20, ge=0, le=1)
    daily_loss_limit: float = Field(0.03, gt=0, le=1, description="share of net liq: REDUCING")
    daily_halt_limit: float = Field(0.05, gt=0, le=1, description="share of net liq: HALTED")
    max_orders_per_minute: int = Field(20, ge=1, le=3000)
    price_tolerance: float = Field(0.10, ge=0, le=100,
                                   description="points beyond natural/mid allowed")
    max_quote_age_seconds: float = Field(120.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _pairs(self) -> RiskSettings:
        if self.daily_halt_limit < self.daily_loss_limit:
            raise ValueError(f"daily_halt_limit {self.daily_halt_limit} is below "
                             f"daily_loss_limit {self.daily_loss_limit}: the halt must come "
                             "at the same loss as REDUCING or later")
        return self


class OrderSettings(_Section):
    walk_steps: int = Field(4, ge=1, le=20)
    walk_seconds: float = Field(10.0, gt=0, le=3600)
    max_slippage: float = Field(1.0, ge=0, le=1,
                                description="share of mid-to-natural we may give up")



# --- alerts and the web server (issue 17: bot.alerts, bot.metrics, bot.web) ----------------
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class AlertSettings(_Section):
    urls: tuple[str, ...] = Field((), description="apprise notification URLs; empty = no alerts")
    disconnect_seconds: float = Field(120.0, gt=0, description="broker down this long: alert")
    min_interval_seconds: float = Field(300.0, ge=0, description="per alert kind")
    timeout: float = Field(10.0, gt=0, description="seconds one notification may take")


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535, description="0 = any free port")
    token: str = ""
    refresh_seconds: int = Field(10, ge=1, le=3600)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> WebSettings:
        if self.host not in LOOPBACK and not self.token:
            raise ValueError(f"web.host {self.host!r} is not loopback: set web.token "
                             "(the status page would be open to the network)")
        return self


class BacktestSettings(_Section):
    plain_stop_mult: float = Field(2.0, gt=0, le=50,
                                   description="plain condor: stop at this loss x credit")


class Settings(_Section):
    broker: Literal["sim", "ib"] = "sim"
    control_file: Path = Path("control")
    control_poll_seconds: float = Field(1.0, gt=0, le=60)
    tick_seconds: float = Field(60.0, ge=1, le=86_400)
    heartbeat_seconds: float = Field(60.0, ge=1, le=86_400)
    # up to 1e9: docs/IB.md turns the check off that way against an accelerated emulator
    clock_jump_seconds: float = Field(30.0, gt=0, le=1e9,
                                      description="live clock moved this much off")
    store_path: Path = Path("state/condorbot.db")
    log: LogSettings = LogSettings()
    sim: SimSettings = SimSettings()
    ib: IBSettings = IBSettings()
    strategy: StrategyParams = StrategyParams()
    hedge: HedgeParams = HedgeParams()
    risk: RiskSettings = RiskSettings()
    orders: OrderSettings = OrderSettings()
    alerts: AlertSettings = AlertSettings()
    web: WebSettings = WebSettings()
    backtest: BacktestSettings = BacktestSettings()

    @model_validator(mode="before")
    @classmethod
    def _strict_values(cls, raw: Any) -> Any:
        problems = _strict(cls, raw, "")
        if problems:
            raise ValueError("; ".join(problems))
        return raw

    @field_validator("store_path", "control_file")
    @classmethod
    def _a_file(cls, v: Path) -> Path:
        if v.name in ("", ".", "..") or v.is_dir():
            raise ValueError("must name a file, not a directory")
        return v


GENERIC_BOUND = 1e9  # a number no setting needs to reach, for fields without their own bound


def _kinds(ann: Any) -> set[type]:
    """The plain types an annotation admits (through unions, Optional and Literal)."""
    origin = typing.get_origin(ann)
    if origin is Literal:
        return {type(a) for a in typing.get_args(ann)}
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(ann)))
    return {ann} if isinstance(ann, type) else set()


def _strict(model: type[BaseModel], raw: Any, prefix: str) -> list[str]:
    """Booleans only where a bool is wanted; numbers finite and within |x| <= 1e9 unless
    the field has its own upper bound (which pydantic then checks)."""
    if not isinstance(raw, dict):
        return []
    out: list[str] = []
    for name, value in raw.items():
        f = model.model_fields.get(name) if isinstance(name, str) else None
        if f is None:
            continue  # unknown keys are reported by pydantic
        key, ann = prefix + name, f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _strict(ann, value, key + ".")
            continue
        kinds = _kinds(ann)
        bounded = any(hasattr(m, "le") or hasattr(m, "lt") for m in f.metadata)
        if isinstance(value, bool) and bool not in kinds:
            out.append(f"{key} = {value!r}: must be a number or text, not true/false")
        elif kinds == {bool} and not isinstance(value, bool):
            out.append(f"{key} = {value!r}: must be true or false")
        elif (x := _number(value, kinds)) is not None:
            if not math.isfinite(x):
                out.append(f"{key} = {value!r}: must be a finite number")
            elif not bounded and abs(x) > GENERIC_BOUND:
                out.append(f"{key} = {value!r}: out of range (at most {GENERIC_BOUND:g})")
    return out


def _number(value: Any, kinds: set[type]) -> float | None:
    """The value as a number if it is one, or text a numeric field would read as one (YAML
    reads 1e26 as the string '1e26', which pydantic then parses)."""
    if isinstance(value, bool) or not kinds & {int, float}:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _shown(value: Any, most: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= most else text[:most] + "..."


def _describe(err: ErrorDetails, raw: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return f"unknown key '{loc}' (value {_shown(err.get('input'))})"
    msg = msg.removeprefix("Value error, ")
    if loc and err.get("type") == "value_error" and isinstance(err.get("input"), dict):
        return f"{loc}: {msg}"  # a section's own check: the message names the keys
    if loc:
        return f"{loc} = {_shown(err.get('input'))}: {msg}"
    # model-level validators: the message names the keys itself
    return msg.removeprefix("Value error, ")


def parse(raw: Any, source: str = "config") -> Settings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(_describe(err, raw) for err in e.errors())
        raise ConfigError(_one_line(f"{source}: {problems}")) from None


MAX_CONFIG_BYTES = 1_000_000  # config.yaml is a few kB; anything this big is not a config
BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
        b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text(p: Path) -> str:
    """The file's text: a regular file, at most MAX_CONFIG_BYTES, UTF-8 without NUL bytes."""
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"config file {p} is not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {p} has {st.st_size} bytes, more than "
                              f"{MAX_CONFIG_BYTES}: not a config file")
        with p.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror}") from None
    for bom, name in BOMS.items():
        if data.startswith(bom):
            raise ConfigError(f"config file {p} is {name} text: save it as UTF-8")
    if b"\x00" in data:
        raise ConfigError(f"config file {p} holds NUL bytes: binary (or UTF-16/32), "
                          "not UTF-8 YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p} is not UTF-8 text (byte {data[e.start]:#04x} at "
                          f"offset {e.start})") from None


def load(path: str | Path) -> Settings:
    p = Path(path)
    text = _text(p)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(_one_line(f"{p}: invalid YAML{at}: {getattr(e, 'problem', e)}")) \
            from None
    except (ValueError, TypeError, RecursionError) as e:  # e.g. a date like 2026-13-45
        raise ConfigError(_one_line(f"{p}: invalid YAML value: {e}")) from None
    return parse(raw, str(p))


def with_overrides(settings: Settings, **sim: Any) -> Settings:
    """Return settings with sim fields replaced (CLI flags), validated again."""
    given = {k: v for k, v in sim.items() if v is not None}
    if not given:
        return settings
    raw = settings.model_dump(mode="json")
    raw["sim"].update(given)
    return parse(raw, "command line")
