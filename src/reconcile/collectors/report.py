"""The collectors' HTML report: one self-contained file, inline CSS and SVG charts drawn here.

Reads balances (balances.py) and KPIs (kpis.py) as of a date and writes one
HTML page that opens without a network and prints on A4: totals per
currency, KPIs with their formulas, aging distribution, cash applied per
day, automatic-posting rate and backlog per run, the queue by reason and
age, and the top overdue customers. Amounts are printed exactly from minor
units; pixel sizes are the only floats. No JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from reconcile.collectors.balances import Collections, balances, bucket_labels
from reconcile.collectors.kpis import (
    AUTO_RATE_FORMULA,
    CEI_FORMULA,
    DAYS_TO_PAY_FORMULA,
    DSO_FORMULA,
    Kpis,
    age_labels,
    kpis,
)
from reconcile.core.money import format_minor

BLUE, RED, GREY, GREEN = "#2f6db5", "#c0392b", "#9aa5b1", "#2e8b57"
AGE_COLOURS = ["#9ecae1", "#6baed6", "#f2a541", "#e4572e", "#a4161a"]
TOTAL_FIELDS = (
    ("open", "open receivables"), ("overdue", "overdue"), ("on_account", "credit on account"),
    ("pending_application", "unapplied cash (queue)"), ("cash_applied", "cash applied in period"),
)


@dataclass(frozen=True)
class ReportData:
    as_of: date
    collections: Collections
    balances: pl.DataFrame
    kpis: Kpis
    totals: pl.DataFrame  # currency + TOTAL_FIELDS in minor units, hold_customers


def money(minor: int, currency: str) -> str:
    """'-1,234.50 EUR' from minor units, exactly (the digits come from money.format_minor)."""
    text = format_minor(int(minor), currency)
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, frac = text.partition(".")
    grouped = f"{int(whole):,}"
    return f"{sign}{grouped}{'.' + frac if frac else ''}"


def gather(engine: Engine, as_of: date, collections: Collections) -> ReportData:
    frame = balances(engine, as_of, collections.edges, broken_after_days=collections.broken_after_days)
    k = kpis(engine, as_of, collections)
    applied = k.cash_per_day.group_by("currency").agg(
        (pl.col("applied_minor").sum() + pl.col("reversed_minor").sum()).alias("cash_applied"))
    totals = (
        frame.group_by("currency").agg(
            *[pl.col(c).sum() for c, _ in TOTAL_FIELDS if c != "cash_applied"],
            pl.col("customer_id").filter(pl.col("hold_calls")).n_unique().alias("hold_customers"),
        )
        .join(applied, on="currency", how="full", coalesce=True)
        .with_columns(pl.col([c for c, _ in TOTAL_FIELDS] + ["hold_customers"]).fill_null(0).cast(pl.Int64))
        .sort("currency")
    )
    return ReportData(as_of, collections, frame, k, totals)


# --- SVG -------------------------------------------------------------------------


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'role="img" aria-label="{escape(label)}" font-family="inherit" font-size="12">{"".join(body)}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def vbars(labels: list[str], values: list[int], texts: list[str], label: str, colour: str = BLUE,
          width: int = 1040, height: int = 240, rotate: bool = False) -> str:
    """Vertical bars (negative values hang below the axis), each with its exact value written."""
    if not values:
        return '<p class="empty">nothing in this period</p>'
    top, bottom, left = 24, (70 if rotate else 34), (48 if rotate else 10)  # rotated labels reach left
    high, low = max(max(values), 0), min(min(values), 0)
    span = (high - low) or 1
    plot = height - top - bottom
    zero = top + plot * high / span
    step = (width - left * 2) / len(values)
    bar = min(max(step * 0.7, 1), 90)
    body = [f'<line x1="{left}" x2="{width - left}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#555"/>']
    every = max(1, -(-len(values) * (28 if rotate else 80) // width))
    show_values = max(len(t) for t in texts) * 6.5 <= step  # write values only where they fit
    for i, (name, value, text) in enumerate(zip(labels, values, texts)):
        x = left + i * step + (step - bar) / 2
        h = plot * abs(value) / span
        y = zero - h if value >= 0 else zero
        fill = colour if value >= 0 else RED
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" fill="{fill}">'
                    f'<title>{escape(name)}: {escape(text)}</title></rect>')
        if show_values and text:
            body.append(_text(x + bar / 2, (y - 5) if value >= 0 else (y + h + 13), text, "middle"))
        cx = x + bar / 2
        if i % every:
            continue  # thin the axis labels so they never overlap
        if rotate:
            body.append(_text(cx, height - bottom + 12, name, "end",
                              transform=f"rotate(-45 {cx:.1f} {height - bottom + 12:.1f})", font_size="10"))
        else:
            body.append(_text(cx, height - bottom + 16, name, "middle"))
    return _svg(width, height, body, label)


def hbars(labels: list[str], values: list[int], texts: list[str], label: str, colour: str = RED,
          width: int = 1040) -> str:
    if not values:
        return '<p class="empty">none</p>'
    row, name_w, text_w = 24, 300, 150
    height = row * len(values) + 8
    high = max(max(values), 1)
    body = []
    for i, (name, value, text) in enumerate(zip(labels, values, texts)):
        y = 4 + i * row
        w = (width - name_w - text_w) * max(value, 0) / high
        body.append(_text(name_w - 8, y + 16, name, "end"))
        body.append(f'<rect x="{name_w}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row - 8}" fill="{colour}">'
                    f'<title>{escape(name)}: {escape(text)}</title></rect>')
        body.append(_text(name_w + w + 6, y + 16, text))
    return _svg(width, height, body, label)


def stacked_hbars(rows: list[str], segments: list[str], counts: list[list[int]], label: str,
                  width: int = 1040) -> str:
    """One bar per row (e.g. queue reason) split into segments (e.g. age), counts written in each part."""
    if not rows:
        return '<p class="empty">the queue is empty</p>'
    row, name_w = 26, 200
    legend_h = 26
    height = legend_h + row * len(rows) + 6
    high = max(max(sum(c) for c in counts), 1)
    body = []
    x: float = name_w
    for colour, name in zip(AGE_COLOURS, segments):
        body.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>')
        body.append(_text(x + 16, 14, name))
        x += 120
    for i, (name, parts) in enumerate(zip(rows, counts)):
        y = legend_h + i * row
        body.append(_text(name_w - 8, y + 17, name, "end"))
        x = float(name_w)
        for colour, seg, count in zip(AGE_COLOURS, segments, parts):
            if not count:
                continue
            w = (width - name_w - 60) * count / high
            body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}">'
                        f'<title>{escape(name)}, {escape(seg)}: {count}</title></rect>')
            if w > 18:
                body.append(_text(x + w / 2, y + 17, str(count), "middle"))
            x += w
        body.append(_text(x + 6, y + 17, str(sum(parts))))
    return _svg(width, height, body, label)


# --- page ------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:#1d2733;margin:0;background:#f4f6f8}main{max-width:1120px;margin:0 auto;padding:24px}
header{border-bottom:3px solid #2f6db5;margin-bottom:16px}h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:12px 0 4px;color:#3d4b5c}
.meta{color:#5b6878;margin:0 0 12px}section{background:#fff;border:1px solid #dde3ea;border-radius:6px;
padding:14px 18px;margin:0 0 16px;break-inside:avoid}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e6eaef;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.formula{color:#5b6878;font-size:12px;margin:2px 0}.hold{color:#c0392b;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:8px 20px}
.empty{color:#5b6878;font-style:italic}svg{display:block;max-width:100%;height:auto}svg text{fill:#1d2733}
@page{size:A4;margin:12mm}@media print{body{background:#fff;font-size:11px}main{padding:0;max-width:none}
section{border:none;border-top:1px solid #ccd;border-radius:0;padding:8px 0}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _table(headers: list[str], rows: list[list[str]], numeric: frozenset[int] | set[int] = frozenset(),
           attrs: list[str] | None = None, ident: str = "") -> str:
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{attrs[r] if attrs else ''}>{cells}</tr>")
    ident_attr = f' id="{ident}"' if ident else ""
    return f'<table{ident_attr}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _totals(data: ReportData) -> str:
    rows, attrs = [], []
    for r in data.totals.iter_rows(named=True):
        cur = r["currency"]
        cells = [escape(cur)]
        for field, _ in TOTAL_FIELDS:
            cells.append(f'<span data-field="{field}" data-minor="{r[field]}">{money(r[field], cur)}</span>')
        cells.append(f'<span data-field="hold_customers">{r["hold_customers"]}</span>')
        rows.append(cells)
        attrs.append(f' data-currency="{escape(cur)}"')
    headers = ["currency", *[name for _, name in TOTAL_FIELDS], "customers on hold"]
    return _table(headers, rows, set(range(1, len(headers))), attrs, "totals")


def _kpi_table(k: Kpis) -> str:
    rows = []
    for r in k.per_currency.iter_rows(named=True):
        cur = r["currency"]
        show = [None if r[c] is None else str(r[c]) for c in ("dso", "cei", "days_to_pay", "days_late")]
        rows.append([escape(cur), show[0] or "-", (show[1] + " %") if show[1] else "-", show[2] or "-", show[3] or "-",
                     money(r["ar_start"], cur), money(r["invoiced"], cur), money(r["ar_end"], cur),
                     money(r["current_end"], cur)])
    return _table(["currency", "DSO (days)", "CEI", "avg days to pay", "avg days late", "receivables at start",
                   "invoiced in period", "receivables at end", "not yet due at end"], rows, set(range(1, 9)))


def _grid(parts: list[str]) -> str:
    return f'<div class="grid">{"".join(f"<div>{p}</div>" for p in parts)}</div>' if len(parts) > 1 else "".join(parts)


def _aging(data: ReportData) -> str:
    labels = bucket_labels(data.collections.edges)
    currencies = [c for c in data.totals["currency"].to_list()
                  if data.balances.filter(pl.col("currency") == c)["open"].sum()]
    width = 520 if len(currencies) > 1 else 1040
    parts = []
    for cur in currencies:
        frame = data.balances.filter(pl.col("currency") == cur)
        values = [int(frame[c].sum()) for c in labels]
        if not any(values):
            continue
        names = ["current" if c == "current" else c.replace("over_", "over ") + " days" for c in labels]
        parts.append(f"<h3>{escape(cur)}</h3>" + vbars(names, values, [money(v, cur) for v in values],
                                                       f"aging distribution {cur}", width=width, height=220))
    return _grid(parts) or '<p class="empty">nothing open</p>'


def _cash(data: ReportData) -> str:
    k = data.kpis
    parts = []
    currencies = k.cash_per_day["currency"].unique().sort().to_list()
    width = 520 if len(currencies) > 1 else 1040
    for cur in currencies:
        frame = k.cash_per_day.filter(pl.col("currency") == cur).sort("day")
        values = (frame["applied_minor"] + frame["reversed_minor"]).to_list()
        labels = [d.strftime("%d %b") for d in frame["day"].to_list()]
        parts.append(f"<h3>{escape(cur)}: {money(sum(values), cur)} over {frame.height} posting day(s)</h3>"
                     + vbars(labels, values, [money(v, cur) for v in values], f"cash applied per day {cur}",
                             colour=GREEN, width=width, rotate=frame.height * 80 > width))
    return _grid(parts) or '<p class="empty">no cash applied in the period</p>'


def _runs(data: ReportData) -> str:
    runs = data.kpis.runs.tail(30)
    if runs.height == 0:
        return '<p class="empty">no posting runs yet</p>'
    labels = [f"{r['started_at']:%d %b %H:%M}" for r in runs.iter_rows(named=True)]
    rates = [int((r or 0) * 10) for r in runs["auto_rate"].to_list()]  # tenths of a percent, for bar heights
    rate_text = [f"{r} %" if r is not None else "-" for r in runs["auto_rate"].to_list()]
    backlog = runs["backlog_after"].to_list()
    width = 520
    rate_chart = ("<h3>automatic-posting rate per run</h3>"
                  + vbars(labels, rates, rate_text, "automatic posting rate per run", width=width, height=220,
                          rotate=runs.height * 80 > width))
    backlog_chart = ("<h3>exception backlog after each run (open items)</h3>"
                     + vbars(labels, backlog, [str(b) for b in backlog], "exception backlog per run", colour=GREY,
                             width=width, height=220, rotate=runs.height * 80 > width))
    return _grid([rate_chart, backlog_chart]) + f'<p class="formula">{escape(AUTO_RATE_FORMULA)}</p>'


def _backlog(data: ReportData) -> str:
    frame = data.kpis.backlog
    ages = age_labels()
    if frame.height == 0:
        return '<p class="empty">the queue was empty on this date</p>'
    per = frame.group_by("reason", "age").agg(pl.col("items").sum())
    reasons = (per.group_by("reason").agg(pl.col("items").sum()).sort(["items", "reason"], descending=[True, False])
               ["reason"].to_list())
    counts = [[int(per.filter((pl.col("reason") == r) & (pl.col("age") == a))["items"].sum()) for a in ages]
              for r in reasons]
    amounts = frame.group_by("reason", "currency").agg(pl.col("amount_minor").sum(), pl.col("items").sum()).sort(
        "reason", "currency")
    rows = [[escape(r["reason"]), escape(r["currency"]), str(r["items"]), money(r["amount_minor"], r["currency"])]
            for r in amounts.iter_rows(named=True)]
    return (stacked_hbars(reasons, ages, counts, "exception backlog by reason and age")
            + '<p class="formula">age: days since the bank booked the line</p>'
            + _table(["reason", "currency", "items", "amount"], rows, {2, 3}))


def _top_overdue(data: ReportData) -> str:
    n = data.collections.top_overdue
    top = data.balances.filter(pl.col("overdue") > 0).sort(["overdue", "customer_id"], descending=[True, False])
    if top.height == 0:
        return '<p class="empty">nothing overdue</p>'
    main = data.totals.sort("overdue", descending=True)["currency"][0]
    chart_rows = top.filter(pl.col("currency") == main).head(n)
    chart = f"<h3>{escape(main)}</h3>" + hbars(
        [f"{r['customer_id']} {r['name'] or ''}"[:42] for r in chart_rows.iter_rows(named=True)],
        chart_rows["overdue"].to_list(), [money(v, main) for v in chart_rows["overdue"].to_list()],
        f"top overdue customers {main}")
    oldest = bucket_labels(data.collections.edges)[-1]
    rows = []
    for r in top.head(n).iter_rows(named=True):
        cur = r["currency"]
        plan = r["plan_status"] or ""
        if r["plan_missed"]:
            plan += f": {r['plan_missed']}"
        last = (f"{r['last_payment_date']}<br>{money(r['last_payment'], cur)}" if r["last_payment_date"] else "-")
        rows.append([escape(r["customer_id"]), escape(r["name"] or ""), escape(cur), money(r["overdue"], cur),
                     money(r[oldest], cur), money(r["open"], cur), money(r["pending_application"], cur), last,
                     escape(plan), '<span class="hold">HOLD</span>' if r["hold_calls"] else ""])
    return chart + _table(["customer", "name", "cur", "overdue", oldest.replace("_", " "), "open", "unapplied",
                           "last payment", "payment plan", "calls"], rows, {3, 4, 5, 6})


def render(data: ReportData) -> str:
    k = data.kpis
    sections = [
        ("Totals", _totals(data) + '<p class="formula">Unapplied cash: credits waiting in the exception queue '
         'with a guessed customer; call holds apply while a customer has unapplied cash or an open queue item.</p>'),
        (f"KPIs, period {k.period_start} to {k.as_of} ({k.period_days} days)",
         _kpi_table(k) + "".join(f'<p class="formula">{escape(f)}</p>'
                                 for f in (DSO_FORMULA, CEI_FORMULA, DAYS_TO_PAY_FORMULA))),
        ("Aging distribution (days past due)", _aging(data)),
        ("Cash applied per day (posting date, net of reversals)", _cash(data)),
        ("Posting runs", _runs(data)),
        ("Exception backlog by reason and age", _backlog(data)),
        (f"Top overdue customers (top {data.collections.top_overdue})", _top_overdue(data)),
    ]
    body = "".join(f"<section><h2>{escape(title)}</h2>{html}</section>" for title, html in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Receivables as of {data.as_of}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>Receivables and cash application as of {data.as_of}</h1>"
        f'<p class="meta">From the committed ledger at the end of {data.as_of} (UTC): '
        f"{data.balances['customer_id'].n_unique()} customers with a balance, "
        f"{k.runs.height} posting run(s). Amounts are exact, in each currency.</p></header>"
        f"{body}</main></body></html>\n"
    )


def write_report(engine: Engine, path: str | Path, as_of: date, collections: Collections | None = None) -> ReportData:
    data = gather(engine, as_of, collections or Collections())
    Path(path).write_text(render(data), encoding="utf-8")
    return data
