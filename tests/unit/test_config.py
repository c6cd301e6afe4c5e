"""Typed configuration: unknown keys and wrong types refused by name, defaults equal the shipped file."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.config import defaults, described, load_config
from reconcile.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config"


def _folder(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "reconcile.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def test_the_shipped_file_says_what_the_code_defaults_say() -> None:
    shipped = load_config(SHIPPED)
    fallback = defaults()
    # the shipped file adds the non-receivable patterns; every other value is the code's default
    matching = replace(shipped.matching, non_receivable={})
    assert matching == fallback.matching
    for section in ("aging", "collections", "queue", "posting", "inbox", "schedule", "scale", "statements"):
        assert getattr(shipped, section) == getattr(fallback, section), section


@pytest.mark.parametrize(("toml", "message"), [
    ("[matching]\nauto_post_treshold = 0.8\n", "unknown key 'auto_post_treshold'; did you mean 'auto_post_threshold'?"),
    ("[matchin]\nauto_post_threshold = 0.8\n", "unknown section [matchin]; did you mean [matching]?"),
    ('[matching]\nauto_post_threshold = "high"\n', "[matching] auto_post_threshold must be a number, not 'high'"),
    ("[queue]\nwrite_off_approval_limit = 50.0\n", "[queue] write_off_approval_limit must be a decimal amount as text"),
    ("[queue]\nsla_days = 2.5\n", "[queue] sla_days must be a whole number, not 2.5"),
    ("[aging]\nbuckets = [30, 0]\n", "[aging] buckets must be increasing"),
    ('[statements]\ntimezone = "Mars/Olympus"\n', "is not an IANA time zone"),
    ("[matching.confidence]\nexcat = 0.9\n", "[matching.confidence] unknown key 'excat'; did you mean 'exact'?"),
    ("[matching\n", "reconcile.toml"),
])
def test_a_bad_file_is_refused_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_folder(tmp_path, toml))
    assert message in str(caught.value)
    assert str(tmp_path / "reconcile.toml") in str(caught.value)


def test_values_are_typed_and_their_source_is_known(tmp_path: Path) -> None:
    config = load_config(_folder(tmp_path, '[queue]\nwrite_off_approval_limit = "75.50"\nsla_days = 5\n'))
    assert config.queue.write_off_approval_limit == Decimal("75.50") and config.queue.sla_days == 5
    assert config.queue.approval_limit_minor("EUR") == 7550 and config.queue.approval_limit_minor("JPY") == 76
    shown = {key: (value, source) for key, value, source in described(config)}
    assert shown["queue.sla_days"] == ("5", str(tmp_path / "reconcile.toml"))
    assert shown["queue.claim_expiry_minutes"] == ("240", "default")
    assert shown["profiles.generic"][1] == "built-in"


def test_a_team_profile_folder_adds_to_the_built_in_profiles(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "")
    (folder / "profiles").mkdir()
    generic = (SHIPPED / "profiles" / "generic.toml").read_text()
    (folder / "profiles" / "my-bank.toml").write_text(generic.replace('name = "generic"', 'name = "my-bank"'))
    (folder / "profiles" / "generic.toml").write_text(generic.replace('description = "', 'description = "ours: '))
    config = load_config(folder)
    names = {p.name: p for p in config.profiles}
    builtin = {p.name for p in defaults().profiles}
    assert builtin <= set(names) and "my-bank" in names
    assert names["my-bank"].origin == str(folder / "profiles")
    # same name: the team's replaces the built-in
    assert names["generic"].origin == str(folder / "profiles") and names["generic"].description.startswith("ours")
    assert config.parse_options().csv_profiles == config.profiles
