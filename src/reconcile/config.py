"""Typed configuration: reconcile.toml and the CSV profiles, validated once into frozen objects.

Where it lives: `--config DIR`, else $RECONCILE_CONFIG_DIR, else ./config when it holds
reconcile.toml, else the defaults shipped inside the package. `load_config` reads the file,
refuses unknown keys and wrong types naming the file, the key and what was expected, and
remembers where every value came from (`reconcile config show`). The composition roots (CLI,
web, flows) call it once and pass the Config (or one of its sections) down; nothing below them
reads configuration on its own.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconcile.core.errors import ConfigError
from reconcile.core.money import to_minor
from reconcile.parsers.base import ParseOptions
from reconcile.parsers.csv_profiles import (
    Profile,
    builtin_profile_dir,
    builtin_profiles,
    load_profile_dir,
)

MAIN_FILE = "reconcile.toml"


def config_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("RECONCILE_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path("config")
    if (local / MAIN_FILE).is_file():
        return local
    return shipped_dir()


def shipped_dir() -> Path:
    return Path(str(resources.files("reconcile.default_config")))


# --- the sections ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Confidence:
    """[matching.confidence]: how sure each kind of evidence makes the matcher (0-1)."""

    exact: float = 0.99
    core: float = 0.97
    joined: float = 0.95
    fuzzy: float = 0.93
    account: float = 0.96
    name_strong: float = 0.94
    name: float = 0.91
    name_and_amount: float = 0.92
    name_weak: float = 0.80


@dataclass(frozen=True)
class MatchingRules:
    """[matching]: thresholds and tolerances of the matcher."""

    auto_post_threshold: float = 0.90
    early_payment_discount: Decimal = Decimal("0.02")
    name_threshold: float = 85.0
    name_low: float = 75.0
    name_margin: float = 6.0
    name_amount_candidates: int = 10
    max_subset_items: int = 18
    max_subset_size: int = 5
    # per currency; "default" for the rest
    write_off_tolerance: Mapping[str, Decimal] = field(default_factory=lambda: {"default": Decimal("2.00")})
    confidence: Confidence = field(default_factory=Confidence)
    # category -> case-insensitive regular expression over remittance, bank code and payer name
    non_receivable: Mapping[str, str] = field(default_factory=dict)

    def tolerance(self, currency: str) -> Decimal:
        return self.write_off_tolerance.get(currency, self.write_off_tolerance.get("default", Decimal(0)))


@dataclass(frozen=True)
class Aging:
    """[aging]: days past due that end each bucket; the last bucket is open-ended."""

    buckets: tuple[int, ...] = (0, 30, 60, 90)


@dataclass(frozen=True)
class CollectionsConfig:
    """[collections]."""

    plan_broken_after_days: int = 30
    dso_period_days: int = 90
    top_overdue_customers: int = 10


@dataclass(frozen=True)
class QueueConfig:
    """[queue]."""

    write_off_approval_limit: Decimal = Decimal("50.00")
    sla_days: int = 3
    claim_expiry_minutes: int = 240
    learn: bool = True
    # the team's calendar (IANA zone): a decision made by a person belongs to this day there
    business_timezone: str = "UTC"

    def business_date(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.business_timezone)).date()

    def approval_limit_minor(self, currency: str) -> int:
        return to_minor(self.write_off_approval_limit, currency, exact=False)

    def claim_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(minutes=self.claim_expiry_minutes)


@dataclass(frozen=True)
class PostingConfig:
    """[posting]."""

    chunk_lines: int = 5000
    # PostgreSQL: chunks posted at once, each on its own connection (SQLite always posts one at a time)
    connections: int = 2


@dataclass(frozen=True)
class InboxConfig:
    """[inbox]: folders of the daily run (archive and quarantine relative to the inbox unless absolute)."""

    path: str = "inbox"
    archive: str = "archive"
    quarantine: str = "quarantine"
    receivables: str = "receivables"


@dataclass(frozen=True)
class ScheduleConfig:
    """[schedule]: when `reconcile serve` runs the daily run (cron in `timezone`)."""

    cron: str = "0 6 * * 1-5"
    timezone: str = "UTC"
    load_ar_cron: str = "30 5 * * 1-5"


@dataclass(frozen=True)
class ScaleConfig:
    """[scale]: matching in partitions, on a Dask cluster when one is named."""

    partitions: int = 1
    dask_address: str = ""
    dask_workers: int = 2


@dataclass(frozen=True)
class NotifyConfig:
    """[notify]: who hears about a posting run that failed or crashed."""

    webhook_url: str = ""        # a JSON POST per failed run ("" = none)
    prefect_block: str = ""      # a Prefect notification block, "type-slug/name" ("" = none)
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class StatementsConfig:
    """[statements]: the time zone a booking given as a date-time is booked in, per account."""

    timezone: str = ""
    account_timezones: Mapping[str, str] = field(default_factory=dict)

    def zones(self) -> dict[str, str]:
        zones = dict(self.account_timezones)
        if self.timezone:
            zones["*"] = self.timezone
        return zones


@dataclass(frozen=True)
class ReceivablesConfig:
    """[receivables]: the daily loop with the receivables system (CONTRACTS section 5)."""

    # a posting to an invoice the receivables system closed before it included the posting:
    # "queue" (a person decides), "on_account" (kept as the customer's credit), "unapply" (back to the queue
    # as unapplied cash)
    closed_elsewhere: str = "queue"
    # a posting run refuses to start before any receivables snapshot was loaded
    require_snapshot: bool = True


@dataclass(frozen=True)
class FxConfig:
    """[fx]: payments in another currency than their invoices when the bank gives no instructed amount.

    rates: "CHF/EUR" = "1.05" (units of EUR for one CHF), used every day; rates_file: a CSV
    `date,from,to,rate` (relative to the configuration folder), a day's rate being the latest on or before it.
    tolerance: a share of the invoice amounts: a difference within it is an FX gain or loss, not a short or
    over payment.
    """

    tolerance: Decimal = Decimal("0.01")
    rates: Mapping[str, Decimal] = field(default_factory=dict)
    rates_file: str = ""


@dataclass(frozen=True)
class WebConfig:
    """[web]: the browser workspace."""

    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    secure_cookie: bool = False
    number_style: str = "en"          # thousands and decimal separators: en, de, fr, ch or plain
    timezone: str = ""                # times shown in this IANA zone ("" = [schedule] timezone)
    page_size: int = 50               # rows per page of the queue and the balances
    login_failures: int = 5           # wrong passwords per account or address within the window
    login_window_seconds: int = 60    # ... after which sign-in is refused until the window passes
    cli_approvals: bool = True        # `reconcile exceptions approve` (with the approver's password)


@dataclass(frozen=True)
class Config:
    """The whole configuration: one frozen object, built once at a composition root."""

    directory: Path
    matching: MatchingRules = field(default_factory=MatchingRules)
    aging: Aging = field(default_factory=Aging)
    collections: CollectionsConfig = field(default_factory=CollectionsConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    posting: PostingConfig = field(default_factory=PostingConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    statements: StatementsConfig = field(default_factory=StatementsConfig)
    receivables: ReceivablesConfig = field(default_factory=ReceivablesConfig)
    web: WebConfig = field(default_factory=WebConfig)
    fx: FxConfig = field(default_factory=FxConfig)
    profiles: tuple[Profile, ...] = ()
    advice_profiles: tuple[Any, ...] = ()   # CSV remittance-advice layouts (built-in and the team's)
    # "matching.auto_post_threshold" -> where its value came from (the file, or "default")
    sources: Mapping[str, str] = field(default_factory=dict)

    def fx_rates(self) -> Any:
        """The configured exchange rates (match/fx.Rates), read once per call from [fx]."""
        return load_rates(self.directory, self.fx)

    def parse_options(self, profile: str | None = None) -> ParseOptions:
        """What the parsers need: these profiles and time zones (and a CSV profile chosen by name)."""
        return ParseOptions(csv_profiles=self.profiles, timezones=self.statements.zones(), profile=profile,
                            advice_profiles=self.advice_profiles)


SECTIONS = tuple(f.name for f in fields(Config)
                 if f.name not in ("directory", "profiles", "advice_profiles", "sources"))


# --- loading and validation ------------------------------------------------------------------


def _type_name(kind: Any) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text",
             Decimal: 'a decimal amount as text, e.g. "2.00"'}
    if kind in names:
        return names[kind]
    origin = typing.get_origin(kind)
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(kind)[0])}s"
    if origin in (Mapping, dict):
        return f"a table of {_type_name(typing.get_args(kind)[1])}s"
    if is_dataclass(kind):
        return "a table"
    return str(kind)


def _label(dotted: str) -> str:
    """"matching.confidence.exact" -> "[matching.confidence] exact", as the file writes it."""
    section, _, key = dotted.rpartition(".")
    return f"[{section}] {key}" if section else f"[{key}]"


def _convert(value: Any, kind: Any, dotted: str, path: Path) -> Any:
    """One TOML value as `kind`, or a ConfigError naming the key and what was expected."""
    def wrong() -> ConfigError:
        return ConfigError(f"{path}: {_label(dotted)} must be {_type_name(kind)}, not {value!r}")

    if kind is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong()
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if kind is Decimal:
        # money is text in the file ("2.00"); a TOML float would already have lost exactness
        if not isinstance(value, str) or isinstance(value, bool):
            raise wrong()
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise wrong() from None
        if not number.is_finite():
            raise wrong()
        return number
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong()
        item = typing.get_args(kind)[0]
        return tuple(_convert(v, item, f"{dotted}[{i}]", path) for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            raise wrong()
        item = typing.get_args(kind)[1]
        return {str(k): _convert(v, item, f"{dotted}.{k}", path) for k, v in value.items()}
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise wrong()
        return _section(kind, value, dotted, path, {})
    raise ConfigError(f"{path}: {_label(dotted)}: unsupported setting type {kind!r}")  # a bug in this module


def _section(cls: Any, table: dict[str, Any], where: str, path: Path, sources: dict[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{path}: [{where}] unknown key {key!r}{hint} (known: {', '.join(sorted(known))})"
            )
        values[key] = _convert(value, hints[key], f"{where}.{key}", path)
        sources[f"{where}.{key}"] = str(path)
    return cls(**values)


def _check(config: Config, path: Path) -> None:
    """Rules across keys that types alone cannot say."""
    m = config.matching
    if not 0 <= m.auto_post_threshold <= 1:
        raise ConfigError(f"{path}: [matching] auto_post_threshold must be between 0 and 1")
    if not m.name_low <= m.name_threshold <= 100:
        raise ConfigError(f"{path}: [matching] needs name_low <= name_threshold <= 100")
    for category, pattern in m.non_receivable.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{path}: [matching.non_receivable] {category}: "
                              f"not a regular expression: {exc}") from None
    edges = config.aging.buckets
    if not edges or list(edges) != sorted(set(edges)):
        raise ConfigError(f"{path}: [aging] buckets must be increasing whole numbers, e.g. [0, 30, 60, 90]")
    if config.posting.chunk_lines < 1:
        raise ConfigError(f"{path}: [posting] chunk_lines must be at least 1")
    if config.posting.connections < 1:
        raise ConfigError(f"{path}: [posting] connections must be at least 1, e.g. connections = 2")
    if config.receivables.closed_elsewhere not in ("queue", "on_account", "unapply"):
        raise ConfigError(f'{path}: [receivables] closed_elsewhere must be "queue", "on_account" or "unapply"')
    zones = {"[statements] timezone": config.statements.timezone, "[schedule] timezone": config.schedule.timezone,
             "[queue] business_timezone": config.queue.business_timezone}
    zones.update({f"[statements.account_timezones] {k}": v for k, v in config.statements.account_timezones.items()})
    for where, zone in zones.items():
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{path}: {where} = {zone!r} is not an IANA time zone "
                                  "(e.g. \"Europe/Amsterdam\")") from None


def load_rates(directory: Path, fx: FxConfig) -> Any:
    """[fx] rates and rates_file as match/fx.Rates; a bad pair or file is a ConfigError naming it."""
    import csv
    from datetime import date as day_type

    from reconcile.match.fx import Rates

    table: dict[tuple[str, str], list[tuple[day_type, Decimal]]] = {}
    for pair, rate in fx.rates.items():
        source, _, target = pair.partition("/")
        if not (re.fullmatch(r"[A-Z]{3}", source) and re.fullmatch(r"[A-Z]{3}", target)) or rate <= 0:
            raise ConfigError(f"{directory / MAIN_FILE}: [fx.rates] {pair!r} must be like \"CHF/EUR\" = \"1.05\"")
        table.setdefault((source, target), []).append((day_type.min, rate))
    if fx.rates_file:
        path = directory / fx.rates_file
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                for number, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        key = (row["from"].strip().upper(), row["to"].strip().upper())
                        table.setdefault(key, []).append((day_type.fromisoformat(row["date"].strip()),
                                                          Decimal(row["rate"].strip())))
                    except (KeyError, ValueError, ArithmeticError, AttributeError):
                        raise ConfigError(f"{path}: line {number}: expected date,from,to,rate "
                                          "(e.g. 2026-03-02,CHF,EUR,1.0512)") from None
        except OSError as exc:
            raise ConfigError(f"{path}: [fx] rates_file cannot be read: {exc.strerror or exc}") from None
    return Rates({k: tuple(sorted(v)) for k, v in table.items()}, fx.tolerance)


def team_profiles(directory: Path) -> tuple[Profile, ...]:
    """The profiles in DIR/profiles, unless DIR is the shipped configuration (those are the built-ins)."""
    folder = directory / "profiles"
    if not folder.is_dir() or folder.resolve() == builtin_profile_dir().resolve():
        return ()
    return load_profile_dir(folder, str(folder))


def advice_profiles(directory: Path) -> tuple[Any, ...]:
    """The CSV advice layouts: built-in, and the team's DIR/advice_profiles (same name replaces)."""
    from reconcile.parsers.advice_csv import (
        builtin_advice_profile_dir,
        builtin_advice_profiles,
        load_advice_profile_dir,
    )
    from reconcile.parsers.csv_profiles import merge_profiles

    shipped = builtin_advice_profiles()
    folder = directory / "advice_profiles"
    if not folder.is_dir() or folder.resolve() == builtin_advice_profile_dir().resolve():
        return shipped
    return merge_profiles(shipped, load_advice_profile_dir(folder, str(folder)))  # type: ignore[arg-type]


def load_config(directory: str | Path | None = None) -> Config:
    """Read and validate DIR/reconcile.toml and DIR/profiles; ConfigError names the file, key and problem."""
    folder = config_dir(directory)
    path = folder / MAIN_FILE
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    sources: dict[str, str] = {}
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for name, table in raw.items():
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            raise ConfigError(f"{path}: unknown section [{name}]{hint} (known: {', '.join(SECTIONS)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        sections[name] = _section(hints[name], table, name, path, sources)
    profiles = builtin_profiles()
    team = team_profiles(folder)
    if team:
        from reconcile.parsers.csv_profiles import merge_profiles

        profiles = merge_profiles(profiles, team)
    config = Config(directory=folder, profiles=profiles, advice_profiles=advice_profiles(folder), sources=sources,
                    **sections)
    _check(config, path)
    return config


def described(config: Config) -> list[tuple[str, str, str]]:
    """(key, value, source) of every setting, defaults included: what `config show` prints."""
    rows: list[tuple[str, str, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            key = f"{prefix}.{f.name}"
            if is_dataclass(value):
                walk(value, key)
            else:
                source = config.sources.get(key) or next(
                    (s for k, s in config.sources.items() if key.startswith(k + ".")), "default")
                rows.append((key, _show(value), source))

    for name in SECTIONS:
        walk(getattr(config, name), name)
    rows.extend((f"profiles.{p.name}", p.description or p.name, p.origin) for p in config.profiles)
    return rows


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return f'"{value}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def defaults(directory: Path | None = None) -> Config:
    """Every setting at its default and the built-in profiles: for tests and tools without a folder."""
    folder = directory or shipped_dir()
    return Config(directory=folder, profiles=builtin_profiles(), advice_profiles=advice_profiles(folder))


__all__ = [
    "Aging",
    "CollectionsConfig",
    "Confidence",
    "Config",
    "FxConfig",
    "InboxConfig",
    "MatchingRules",
    "NotifyConfig",
    "PostingConfig",
    "QueueConfig",
    "ReceivablesConfig",
    "ScaleConfig",
    "ScheduleConfig",
    "StatementsConfig",
    "WebConfig",
    "config_dir",
    "defaults",
    "described",
    "load_config",
]
