"""The list of statement formats the registry asks, in one place."""

from __future__ import annotations

from reconcile.parsers.base import ParseOptions, Parser


def available_parsers(options: ParseOptions) -> list[Parser]:
    from reconcile.parsers import bai2, camt, csvprofile, mt940, ofx

    return [camt.CamtParser(options), ofx.OfxParser(), mt940.Mt940Parser(), bai2.Bai2Parser(),
            *csvprofile.csv_parsers(options.csv_profiles)]
