"""Reads and validates the open receivables snapshot (CONTRACTS.md §1 and §5) into frames.

customers / invoices / installments come as CSV or Parquet with the same column names, plus an optional
snapshot.toml manifest (when it was taken, full or delta, which posting batches it already includes).
Every problem is collected with file, line and reason, and the whole snapshot is refused when there is
any, so nothing is half-applied. A negative invoice is a credit note (its open amount is negative too).
Writing the frames to the database is receivables/store.py's job.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from reconcile.core.errors import InputError
from reconcile.core.money import format_minor
from reconcile.core.money_expr import exponent_expr, minor_units_expr

REQUIRED = {
    "customers": ("customer_id", "name"),
    "invoices": ("invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount", "open_amount"),
    "installments": ("plan_id", "invoice_number", "installment_no", "due_date", "amount"),
}
OPTIONAL = {
    "customers": ("aliases", "accounts"),
    "invoices": ("payment_reference",),
    "installments": ("paid_amount",),
}


class SnapshotError(InputError):
    """Several problems in one snapshot, reported together."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(None, None, f"{len(problems)} problem(s) in the receivables snapshot:\n{shown}{more}")

    def __str__(self) -> str:
        return self.why


MANIFEST = "snapshot.toml"
KINDS = ("full", "delta")


@dataclass(frozen=True)
class Manifest:
    """snapshot.toml: when the receivables system took the snapshot and what it already reflects."""

    taken_at: datetime | None = None
    kind: str = "full"                      # full: every open invoice is listed; delta: only listed rows change
    includes_postings_through: str | None = None  # the last posting batch it had imported (None: none)

    @property
    def business_date(self) -> date | None:
        return self.taken_at.date() if self.taken_at else None


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        return Manifest()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, str(exc)) from None
    unknown = set(raw) - {"taken_at", "kind", "includes_postings_through"}
    if unknown:
        raise InputError(path, ", ".join(sorted(unknown)),
                         "unknown key(s); known: taken_at, kind, includes_postings_through")
    taken = raw.get("taken_at")
    if isinstance(taken, str):
        try:
            taken = datetime.fromisoformat(taken)
        except ValueError:
            raise InputError(path, "taken_at", f"{taken!r} is not an ISO date-time") from None
    if taken is not None and (not isinstance(taken, datetime) or taken.tzinfo is None):
        raise InputError(path, "taken_at", "must be a date-time with an offset, e.g. 2026-03-03T05:30:00+01:00")
    kind = raw.get("kind", "full")
    if kind not in KINDS:
        raise InputError(path, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    through = raw.get("includes_postings_through")
    if through is not None and (not isinstance(through, str) or not through.strip()):
        raise InputError(path, "includes_postings_through", "must be a posting batch id such as \"B000007\"")
    return Manifest(taken_at=taken, kind=kind, includes_postings_through=through.strip() if through else None)


@dataclass(frozen=True)
class Snapshot:
    customers: pl.DataFrame     # customer_id, name
    aliases: pl.DataFrame       # customer_id, alias
    accounts: pl.DataFrame      # customer_id, account (normalised)
    invoices: pl.DataFrame      # invoice_number, customer_id, issue_date, due_date, currency,
                                # amount_minor, open_minor, payment_reference
    installments: pl.DataFrame  # plan_id, invoice_number, installment_no, due_date, amount_minor, paid_minor
    manifest: Manifest = field(default_factory=Manifest)
    content_sha256: str = ""    # of the files read: loading the same snapshot again is recognised
    source: str = ""


def normalise_account(expr: pl.Expr) -> pl.Expr:
    """IBANs and account numbers compared without spaces, dashes or case."""
    return expr.str.to_uppercase().str.replace_all(r"[\s\-\.]", "")


def _find(directory: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".parquet"):
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _read(path: Path, stem: str) -> pl.DataFrame:
    """All columns as strings, plus the file line (CSV) or row number (Parquet) for messages."""
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.all().cast(pl.String))
            where = pl.format("row {}", pl.int_range(1, pl.len() + 1))
        else:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
            where = pl.format("line {}", pl.int_range(2, pl.len() + 2))
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read {stem}: {str(exc).splitlines()[0]}") from None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    missing = [c for c in REQUIRED[stem] if c not in frame.columns]
    if missing:
        raise InputError(path, "header", f"missing required column(s): {', '.join(missing)}")
    for column in OPTIONAL[stem]:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    text_columns = [*REQUIRED[stem], *OPTIONAL[stem]]
    frame = frame.select(
        [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in text_columns]
    ).with_columns(where.alias("_where"))
    return frame


@dataclass(frozen=True)
class _Check:
    frame: pl.DataFrame
    bad: pl.Expr
    path: Path
    why: pl.Expr


class _Problems:
    """Every bad row, in the order the checks were made. Checks are kept until errors() and then the
    checks on one frame are evaluated in one pass: most snapshots are clean, and one pass over 200k
    invoices with every check costs far less than one filter per check. Only a check that found
    something is filtered for its rows."""

    def __init__(self) -> None:
        self._checks: list[_Check | InputError] = []

    def where(self, frame: pl.DataFrame, bad: pl.Expr, path: Path, why: pl.Expr | str) -> None:
        self._checks.append(_Check(frame, bad, path, why if isinstance(why, pl.Expr) else pl.lit(why)))

    def add(self, error: InputError) -> None:
        self._checks.append(error)

    def errors(self) -> list[InputError]:
        per_frame: dict[int, list[tuple[int, _Check]]] = {}
        for number, check in enumerate(self._checks):
            if isinstance(check, _Check):
                per_frame.setdefault(id(check.frame), []).append((number, check))
        found: dict[int, bool] = {}
        for checks in per_frame.values():
            anything = checks[0][1].frame.select([c.bad.any().alias(str(n)) for n, c in checks]).row(0)
            found.update(zip([n for n, _ in checks], anything, strict=True))
        items: list[InputError] = []
        for number, check in enumerate(self._checks):
            if isinstance(check, InputError):
                items.append(check)
            elif found[number]:
                rows = check.frame.filter(check.bad).select("_where", check.why.alias("_why")).head(200)
                items.extend(InputError(check.path, w, y) for w, y in rows.iter_rows())
        return items


def _required_present(frame: pl.DataFrame, stem: str, path: Path, problems: _Problems) -> None:
    for column in REQUIRED[stem]:
        problems.where(frame, pl.col(column).is_null(), path, f"{column} is empty")


def _date(frame: pl.DataFrame, column: str, path: Path, problems: _Problems) -> pl.Expr:
    parsed = pl.col(column).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    problems.where(
        frame, pl.col(column).is_not_null() & parsed.is_null(), path,
        pl.format(f"{column} '{{}}' is not a YYYY-MM-DD date", pl.col(column)),
    )
    return parsed.alias(column)


def _money(frame: pl.DataFrame, column: str, currency: pl.Expr, path: Path, problems: _Problems,
           *, signed: bool = False) -> pl.Expr:
    minor = minor_units_expr(pl.col(column), exponent_expr(currency))
    problems.where(
        frame, pl.col(column).is_not_null() & minor.is_null(), path,
        pl.format(f"{column} '{{}}' is not a decimal amount in the currency's minor unit", pl.col(column)),
    )
    if not signed:
        problems.where(frame, minor < 0, path, pl.format(f"{column} '{{}}' is negative", pl.col(column)))
    return minor


def _duplicates(frame: pl.DataFrame, keys: list[str], path: Path, problems: _Problems) -> None:
    dup = pl.struct(keys).is_duplicated() & pl.struct(keys).is_first_distinct().not_()
    problems.where(frame, dup, path, pl.format(
        "duplicate key " + "/".join("{}" for _ in keys), *[pl.col(k) for k in keys]
    ))


def _split_list(frame: pl.DataFrame, column: str, out: str) -> pl.DataFrame:
    return (
        frame.select("customer_id", pl.col(column).str.split("|").alias(out))
        .explode(out)
        .with_columns(pl.col(out).str.strip_chars())
        .filter(pl.col(out).is_not_null() & (pl.col(out) != ""))
        .unique(maintain_order=True)
    )


def read_snapshot(directory: str | Path) -> Snapshot:
    """Read and validate a snapshot folder; raises SnapshotError listing every bad row."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "not a folder")
    paths = {stem: _find(directory, stem) for stem in REQUIRED}
    for stem in ("customers", "invoices"):
        if paths[stem] is None:
            raise InputError(directory, None, f"{stem}.csv (or .parquet) not found")
    problems = _Problems()

    cpath = paths["customers"]
    assert cpath is not None
    customers = _read(cpath, "customers")
    _required_present(customers, "customers", cpath, problems)
    _duplicates(customers, ["customer_id"], cpath, problems)

    ipath = paths["invoices"]
    assert ipath is not None
    invoices = _read(ipath, "invoices")
    _required_present(invoices, "invoices", ipath, problems)
    _duplicates(invoices, ["invoice_number"], ipath, problems)
    known = customers["customer_id"].drop_nulls().implode()
    problems.where(
        invoices, pl.col("customer_id").is_not_null() & ~pl.col("customer_id").is_in(known), ipath,
        pl.format("unknown customer '{}'", pl.col("customer_id")),
    )
    problems.where(
        invoices, pl.col("currency").is_not_null() & ~pl.col("currency").str.contains(r"^[A-Za-z]{3}$"), ipath,
        pl.format("currency '{}' is not an ISO 4217 code", pl.col("currency")),
    )
    currency = pl.col("currency").str.to_uppercase()
    invoice_frame = invoices.select(
        "invoice_number", "customer_id",
        _date(invoices, "issue_date", ipath, problems),
        _date(invoices, "due_date", ipath, problems),
        currency.alias("currency"),
        # a negative amount is a credit note: its open amount is negative too (CONTRACTS §1)
        _money(invoices, "amount", currency, ipath, problems, signed=True).alias("amount_minor"),
        _money(invoices, "open_amount", currency, ipath, problems, signed=True).alias("open_minor"),
        "payment_reference", "_where",
    )
    credit_note = pl.col("amount_minor") < 0
    problems.where(
        invoice_frame, ~credit_note & (pl.col("open_minor") < 0), ipath,
        "open_amount is negative on an invoice (only a credit note, with a negative amount, has one)",
    )
    problems.where(
        invoice_frame, credit_note & (pl.col("open_minor") > 0), ipath,
        "open_amount is positive on a credit note (its amount is negative: its open amount is negative or 0)",
    )
    problems.where(
        invoice_frame, pl.col("open_minor").abs() > pl.col("amount_minor").abs(), ipath,
        "open_amount is larger than amount",
    )

    installment_frame = pl.DataFrame(schema={
        "plan_id": pl.String, "invoice_number": pl.String, "installment_no": pl.Int64,
        "due_date": pl.Date, "amount_minor": pl.Int64, "paid_minor": pl.Int64,
    })
    spath = paths["installments"]
    if spath is not None:
        inst = _read(spath, "installments")
        _required_present(inst, "installments", spath, problems)
        _duplicates(inst, ["plan_id", "installment_no"], spath, problems)
        inst = inst.join(invoice_frame.select("invoice_number", "currency"), on="invoice_number", how="left")
        problems.where(
            inst, pl.col("invoice_number").is_not_null() & pl.col("currency").is_null(), spath,
            pl.format("unknown invoice '{}'", pl.col("invoice_number")),
        )
        number = pl.col("installment_no").cast(pl.Int64, strict=False)
        problems.where(
            inst, pl.col("installment_no").is_not_null() & (number.is_null() | (number < 1)), spath,
            pl.format("installment_no '{}' is not a whole number from 1", pl.col("installment_no")),
        )
        plan_invoices = inst.group_by("plan_id").agg(pl.col("invoice_number").n_unique().alias("n"))
        problems.where(
            inst.join(plan_invoices, on="plan_id", how="left"), pl.col("n") > 1, spath,
            pl.format("plan '{}' schedules more than one invoice", pl.col("plan_id")),
        )
        ccy = pl.col("currency").fill_null("XXX")
        installment_frame = inst.select(
            "plan_id", "invoice_number", number.alias("installment_no"),
            _date(inst, "due_date", spath, problems),
            _money(inst, "amount", ccy, spath, problems).alias("amount_minor"),
            _money(inst, "paid_amount", ccy, spath, problems).fill_null(0).alias("paid_minor"),
            "_where",
        )
        problems.where(
            installment_frame, pl.col("paid_minor") > pl.col("amount_minor"), spath,
            "paid_amount is larger than amount",
        )
        # a plan divides its invoice: its installments cannot add up to more than the invoice
        scheduled = installment_frame.group_by("plan_id", "invoice_number").agg(
            pl.col("amount_minor").sum().alias("scheduled"), pl.col("_where").first().alias("_first"))
        over = scheduled.join(invoice_frame.select("invoice_number", "amount_minor", "currency"),
                              on="invoice_number", how="inner").filter(
            pl.col("scheduled") > pl.col("amount_minor").abs())
        for plan, number, total, where, amount, ccy in over.select(
                "plan_id", "invoice_number", "scheduled", "_first", "amount_minor", "currency").iter_rows():
            problems.add(InputError(spath, where, (
                f"plan {plan}: installments add up to {format_minor(total, ccy)}, more than invoice "
                f"{number} ({format_minor(amount, ccy)})")))
        installment_frame = installment_frame.drop("_where")

    manifest = read_manifest(directory)
    errors = problems.errors()
    if errors:
        raise SnapshotError(errors)

    digest = hashlib.sha256()
    for path in (directory / MANIFEST, *(p for p in paths.values() if p is not None)):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return Snapshot(
        customers=customers.select("customer_id", "name"),
        aliases=_split_list(customers, "aliases", "alias"),
        accounts=_split_list(customers, "accounts", "account").with_columns(
            normalise_account(pl.col("account")).alias("account")
        ).unique(maintain_order=True),
        invoices=invoice_frame.drop("_where"),
        installments=installment_frame,
        manifest=manifest,
        content_sha256=digest.hexdigest(),
        source=str(directory),
    )
