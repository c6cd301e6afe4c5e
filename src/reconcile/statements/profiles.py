"""CSV bank profiles for the people who write them: listing, and which profile claims a file and
why.

The profile model and its validation are reconcile.parsers.csv_profiles, parsing is
reconcile.parsers.csvprofile, inferring a new profile is reconcile.statements.infer. The profiles
shown here are the ones the caller was configured with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconcile.core.errors import InputError
from reconcile.parsers.csv_profiles import Profile
from reconcile.parsers.csvprofile import CsvProfileParser
from reconcile.parsers.registry import HEAD_BYTES


def list_profiles(profiles: tuple[Profile, ...]) -> list[dict[str, Any]]:
    """One row per profile: name, origin ("built-in" or the team folder), what identifies it."""
    return [
        {
            "name": p.name,
            "origin": p.origin,
            "source": str(p.source),
            "auto_detect": p.auto_detect,
            "encoding": p.encoding,
            "delimiter": p.delimiter,
            "signature": list(p.signature),
            "description": p.description
            if p.auto_detect
            else f"{p.description} (only with --profile {p.name})",
        }
        for p in profiles
    ]


def check_file(path: Path, profiles: tuple[Profile, ...]) -> dict[str, Any]:
    """Who claims the file, why each other profile does not, and what the claimer parses it to.

    Shape (also `profiles check --json`): {"file", "claimed_by": name or None, "ambiguous": [names],
    "profiles": [{"name", "origin", "claims": bool, "reason": str or None}], "parsed": {"format",
    "statements", "lines", "accounts"} or None, "error": str or None}.

    """
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    claimed: list[CsvProfileParser] = []
    for profile in profiles:
        parser = CsvProfileParser(profile)
        problem = parser.mismatch(data[:HEAD_BYTES], path)
        if problem is None and not profile.auto_detect:
            problem = f"fits, but is used only when chosen by name (--profile {profile.name})"
        elif problem is None:
            claimed.append(parser)
        rows.append(
            {
                "name": profile.name,
                "origin": profile.origin,
                "claims": problem is None,
                "reason": problem,
            }
        )
    report: dict[str, Any] = {
        "file": str(path),
        "claimed_by": None,
        "ambiguous": [],
        "profiles": rows,
        "parsed": None,
        "error": None,
    }
    if len(claimed) > 1:
        report["ambiguous"] = [p.profile.name for p in claimed]
        report["error"] = (
            "more than one profile claims the file: make their signatures distinct "
            "(header_exact, header_absent) or set auto_detect = false on one"
        )
    elif claimed:
        report["claimed_by"] = claimed[0].profile.name
        try:
            parsed = claimed[0].parse(data, path)
        except InputError as exc:
            report["error"] = f"{claimed[0].name} claims it but cannot parse it: {exc}"
        else:
            report["parsed"] = {
                "format": parsed.format,
                "statements": len(parsed.statements),
                "lines": parsed.line_count,
                "accounts": [s.account for s in parsed.statements],
            }
    return report


def check_text(report: dict[str, Any]) -> str:
    """The check report as lines for a person."""
    out = [f"{report['file']}:"]
    for row in report["profiles"]:
        verdict = "claims the file" if row["claims"] else f"no ({row['reason']})"
        if not row["claims"] and row["reason"].startswith("fits, but"):
            verdict = row["reason"]
        out.append(f"  {row['name']} [{row['origin']}]: {verdict}")
    if report["parsed"]:
        parsed = report["parsed"]
        out.append(
            f"parsed with csv:{report['claimed_by']}: {parsed['lines']} line(s) in "
            f"{parsed['statements']} statement(s)"
        )
    if report["error"]:
        out.append(report["error"])
    if not report["claimed_by"] and not report["ambiguous"]:
        out.append(
            f"no profile claims the file: `reconcile profiles new {report['file']}` infers one"
        )
    return "\n".join(out)
