"""config.yaml -> validated, typed settings, with one clear message for bad input.

`load(path)` returns `Settings` or raises `ConfigError` whose text names the key and value.
The CLI turns a ConfigError into exit status 2 without a traceback.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from strategies.params import HedgeParams, StrategyParams


class ConfigError(Exception):
    """Bad configuration; the message is meant for the operator as it is."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogSettings(_Section):
    dir: Path = Path("logs")
    file: str = "condorbot.jsonl"
    max_bytes: int = Field(10_000_000, ge=10_000)
    backups: int = Field(5, ge=0, le=100)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SimSettings(_Section):
    scenario: str = "calm"
    seed: int = 7
    speed: float | Literal["max"] = 60.0
    days: int | None = Field(None, ge=1)
    start: date = date(2026, 1, 5)
    initial_cash: float = Field(1_000_000.0, gt=0)
    commission_per_contract: float = Field(0.65, ge=0)
    fill_ratio: float = Field(1.0, gt=0, le=1, description="share of remaining qty per fill")
    # the one fill model (bot.sim.fills): p = a^shape x leg_factor^(legs-1) / (1 + w/scale)
    fill_shape: float = Field(2.0, gt=0, description="p rises as (share of mid->natural)^shape")
    fill_leg_factor: float = Field(0.9, gt=0, le=1, description="p multiplier per extra leg")
    fill_spread_scale: float = Field(2.0, gt=0, description="combo half-spread (points) halving p")

    @field_validator("speed")
    @classmethod
    def _speed(cls, v: Any) -> Any:
        if v != "max" and float(v) <= 0:
            raise ValueError("speed must be a positive number or 'max'")
        return v


class IBSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(4002, ge=1, le=65535)
    client_id: int = Field(17, ge=0)
    timeout: float = Field(10.0, gt=0)
    market_data_type: Literal[1, 2, 3, 4] = 1
    max_msgs_per_sec: float = Field(40.0, gt=0, le=50)


class RiskSettings(_Section):
    max_contracts_per_order: int = Field(20, ge=1)
    max_contracts_total: int = Field(80, ge=1)
    max_campaign_loss_pct: float = Field(0.10, gt=0, le=1)
    margin_cap_pct: float = Field(0.50, gt=0, le=1)
    min_cushion: float = Field(0.20, ge=0, le=1)
    daily_loss_limit: float = Field(0.03, gt=0, le=1, description="share of net liq: REDUCING")
    daily_halt_limit: float = Field(0.05, gt=0, le=1, description="share of net liq: HALTED")
    max_orders_per_minute: int = Field(20, ge=1)
    price_tolerance: float = Field(0.10, ge=0, description="points beyond natural/mid allowed")
    max_quote_age_seconds: float = Field(120.0, gt=0)


class OrderSettings(_Section):
    walk_steps: int = Field(4, ge=1, le=20)
    walk_seconds: float = Field(10.0, gt=0)
    max_slippage: float = Field(
        1.0, ge=0, le=1, description="share of mid-to-natural we may give up"
    )


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
    tick_seconds: float = Field(60.0, ge=1)
    heartbeat_seconds: float = Field(60.0, ge=1)
    clock_jump_seconds: float = Field(30.0, gt=0, description="live clock moved this much off")
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


def _describe(err: ErrorDetails, raw: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return f"unknown key '{loc}' (value {err.get('input')!r})"
    if loc:
        return f"{loc} = {err.get('input')!r}: {msg}"
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
        raise ConfigError(f"{source}: {problems}") from None


def load(path: str | Path) -> Settings:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{p}: invalid YAML{at}: {getattr(e, 'problem', e)}") from None
    return parse(raw, str(p))


def with_overrides(settings: Settings, **sim: Any) -> Settings:
    """Return settings with sim fields replaced (CLI flags), validated again."""
    given = {k: v for k, v in sim.items() if v is not None}
    if not given:
        return settings
    raw = settings.model_dump(mode="json")
    raw["sim"].update(given)
    return parse(raw, "command line")
