"""Strategy parameters: one validated definition, shared by config.yaml and the decision code.

Every number of the method is here as a default, never a constant in code. The models are
frozen and forbid unknown keys, so a typo in config.yaml is an error, not a silent default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = float  # documentation alias: a number in [0, 1]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StrategyParams(_Frozen):
    """Entry, exits and the martingale roll step (DESIGN §1)."""

    dte_min: int = Field(45, ge=1, le=365, description="earliest entry expiry, calendar days")
    dte_max: int = Field(60, ge=1, le=365, description="latest entry expiry, calendar days")
    short_delta: float = Field(0.16, gt=0.0, lt=0.5, description="target |delta| of shorts")
    short_delta_min: float = Field(0.15, gt=0.0, lt=0.5, description="lowest allowed |delta|")
    short_delta_max: float = Field(0.20, gt=0.0, lt=0.5, description="highest allowed |delta|")
    wing_width: float = Field(50.0, gt=0, le=500, description="long wing distance, points")
    base_qty: int = Field(1, ge=1, le=100, description="contracts of the entry condor")
    vix_min: float = Field(12.0, ge=0, description="no entry below this VIX")
    vix_max: float = Field(35.0, gt=0, description="no entry above this VIX")
    min_open_minutes: float = Field(15.0, ge=0, description="no entry before open + this")
    entry_blackout_days: float = Field(1.0, ge=0, description="no entry this close to CPI/FOMC")
    take_profit_pct: float = Field(0.5, gt=0, le=1, description="close at this share of credit")
    exit_dte: int = Field(21, ge=0, description="close the condor at this DTE")
    roll_delta: float = Field(0.30, gt=0, lt=1, description="roll trigger: short |delta|")
    roll_delta_hard: float = Field(0.40, gt=0, lt=1, description="roll at once at this |delta|")
    roll_distance_pct: float = Field(0.01, ge=0, lt=0.5, description="roll when this near a short")
    vix_jump_pct: float = Field(0.25, gt=0, description="roll when VIX rises this over entry")
    macd_max_wait_minutes: float = Field(390.0, ge=0, description="wait at most this for MACD")
    wing_mult: float = Field(1.5, ge=1, le=4, description="wing width multiplier per step")
    size_mult: float = Field(1.5, ge=1, le=4, description="quantity multiplier per step")
    max_steps: int = Field(3, ge=0, le=10, description="roll steps allowed per campaign")
    roll_policy: Literal["shrink", "close"] = Field("shrink", description="unfunded roll")
    roll_funding: Literal["hedges", "any"] = Field(
        "hedges", description="hedges: a roll's net debit at the current size and wings must be "
        "covered by the roll fund (hedge gains, carried remainders); any: new credit + fund "
        ">= cost to close (the size-up pays for itself)")
    cooldown_days: float = Field(5.0, ge=0, description="wait after a stopped campaign")
    min_credit: float = Field(0.5, ge=0, description="skip condors paying less, per unit")

    @model_validator(mode="after")
    def _bands(self) -> StrategyParams:
        if not self.short_delta_min <= self.short_delta <= self.short_delta_max:
            raise ValueError(
                f"short_delta {self.short_delta} must lie within "
                f"[short_delta_min {self.short_delta_min}, short_delta_max {self.short_delta_max}]"
            )
        if self.dte_min > self.dte_max:
            raise ValueError(f"dte_min {self.dte_min} exceeds dte_max {self.dte_max}")
        if self.exit_dte >= self.dte_min:
            raise ValueError(f"exit_dte {self.exit_dte} must be below dte_min {self.dte_min}")
        if self.roll_delta > self.roll_delta_hard:
            raise ValueError(
                f"roll_delta {self.roll_delta} exceeds roll_delta_hard {self.roll_delta_hard}"
            )
        if self.vix_min >= self.vix_max:
            raise ValueError(f"vix_min {self.vix_min} must be below vix_max {self.vix_max}")
        return self


class HedgeParams(_Frozen):
    """The ALVH layers (DESIGN §1). Each layer can be switched off on its own."""

    event_layer: bool = Field(True, description="layer 1: VIX call diagonal around CPI/PPI")
    fomc_layer: bool = Field(True, description="layer 2: SPX ATM calendar around FOMC")
    tail_layer: bool = Field(True, description="layer 3: VIX call spread on RSI / A/D warnings")
    event_lead_days: float = Field(2.0, ge=0, le=30, description="open layer 1 this early")
    hedge_ratio: float = Field(1.0, ge=0, le=2, description="hedge vega / condor |vega|")
    hedge_budget_pct: float = Field(0.5, ge=0, le=1, description="budget: share of premium")
    take_profit_pct: float = Field(0.5, gt=0, description="close a layer at this gain")
    tail_take_profit_pct: float = Field(0.5, gt=0, description="monetize on this VIX spike")
    tail_exit: Literal["trail", "fixed"] = Field(
        "trail", description="trail: hold the tail layer into a spike (VIX level, trailing "
        "stop); fixed: take_profit_pct on cost or tail_take_profit_pct VIX rise")
    tail_take_profit_vix: float = Field(40.0, gt=0, description="trail: close at this VIX")
    tail_trail_arm_pct: float = Field(1.0, gt=0, description="trail: arm at this gain on cost")
    tail_trail_pct: float = Field(0.35, gt=0, lt=1, description="trail: give back this of peak")
    tail_rearm: bool = Field(True, description="reopen after a take-profit while signal holds")
    harvest_for_rolls: bool = Field(
        True, description="an unfunded roll (roll_funding: hedges) first realizes just enough "
        "of the layers' unrealized gains (whole contracts, tail layer last) to fund it")
    rsi_high: float = Field(70.0, gt=50, lt=100, description="RSI(14) overbought threshold")
    rsi_low: float = Field(30.0, gt=0, lt=50, description="RSI(14) oversold threshold")
    divergence_days: int = Field(20, ge=2, le=250, description="A/D divergence lookback")
    max_layer_qty: int = Field(10, ge=1, le=100, description="most combos in one hedge layer")
