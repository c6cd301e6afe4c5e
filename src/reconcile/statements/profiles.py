"""CSV bank profiles for the people who write them: listing, and which profile claims a file and why.

The profile model and its validation are reconcile.parsers.csv_profiles; parsing is
reconcile.parsers.csvprofile. The profiles shown here are the ones the caller was configured with.
"""

from __future__ import annotations

from pathlib import Path

from reconcile.core.errors import InputError
from reconcile.parsers.csv_profiles import Profile
from reconcile.parsers.csvprofile import CsvProfileParser


def list_profiles(profiles: tuple[Profile, ...]) -> list[dict[str, str]]:
    return [
        {"name": p.name, "origin": p.origin, "encoding": p.encoding, "delimiter": p.delimiter,
         "signature": ", ".join(p.signature),
         "description": p.description if p.auto_detect else f"{p.description} (only with --profile {p.name})"}
        for p in profiles
    ]


def check_file(path: Path, profiles: tuple[Profile, ...]) -> str:
    """A report for someone writing a profile: who claims the file, why others do not, what it parses to."""
    data = path.read_bytes()
    report = [f"{path}:"]
    claimed = []
    for profile in profiles:
        parser = CsvProfileParser(profile)
        problem = parser.mismatch(data[:65536], path)
        if problem is not None:
            report.append(f"  {profile.name}: no ({problem})")
        elif not profile.auto_detect:
            report.append(f"  {profile.name}: fits, but is used only when chosen by name (--profile {profile.name})")
        else:
            claimed.append(parser)
            report.append(f"  {profile.name}: claims the file")
    if len(claimed) == 1:
        try:
            parsed = claimed[0].parse(data, path)
            report.append(f"parsed with {claimed[0].name}: {parsed.line_count} line(s) in {len(parsed.statements)} statement(s)")
        except InputError as exc:
            report.append(f"{claimed[0].name} claims it but cannot parse it: {exc}")
    elif len(claimed) > 1:
        report.append("more than one profile claims the file: make their signatures distinct "
                      "(header_exact, header_absent) or set auto_detect = false on one")
    else:
        report.append("no profile claims the file")
    return "\n".join(report)
