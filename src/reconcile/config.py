"""Reads config/*.toml into frozen settings.

Where the configuration lives: `--config DIR`, else $RECONCILE_CONFIG_DIR,
else ./config when it holds reconcile.toml, else the defaults shipped inside
the package (the repository's config/ folder). Values are data, not code:
matching rules and thresholds, tolerances, aging buckets, CSV bank profiles.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reconcile.core.errors import ConfigError

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
    return Path(str(resources.files("reconcile.default_config")))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    directory: Path
    raw: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.directory / MAIN_FILE}: [{name}] must be a table")
        return value

    @property
    def profiles_dir(self) -> Path:
        return self.directory / "profiles"


def load_settings(directory: str | Path | None = None) -> Settings:
    folder = config_dir(directory)
    return Settings(directory=folder, raw=_read_toml(folder / MAIN_FILE))
