"""The matching pipeline: references, then payer, then amounts; post only what is certain.

1. Candidates, vectorised over all lines at once: invoices each line names
   (references.py) and customers its payer details point to (payers.py).
2. A decision per line, in booking order (so two payments of one invoice never
   over-allocate), over a small in-memory view of the open book:
   - named invoices (exact, core or joined reference) decide the customer and
     the items: paid in full, short within tolerance (write-off), with an
     early-payment discount, partly (oldest due first), or with an excess kept
     on account;
   - a fuzzy reference counts only if it points to one open item and the amount agrees;
   - otherwise an identified payer (known account, or a name that clearly beats
     every other customer) and an amount that fits exactly one way: one item, a
     payment plan's next installments, one combination of items, one item
     within tolerance;
   - everything else is queued with a reason code, suggestions and evidence.
Every allocation carries its rule, confidence and evidence (signals, runner-up, margin).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import polars as pl

from reconcile.config import MatchingRules
from reconcile.core import frames
from reconcile.core.money import to_minor
from reconcile.match import amounts
from reconcile.match.book import Book, MatchResult
from reconcile.match.payers import payer_candidates
from reconcile.match.references import reference_pairs

Key = tuple[str, int | None]  # (invoice_number, installment_no or None)


@dataclass
class OpenBook:
    """The run's view of open items; open amounts go down as lines are decided."""

    customer: dict[str, str]
    currency: dict[str, str]
    due: dict[str, date]
    open: dict[str, int]
    plan: dict[str, list[list[Any]]]                 # invoice -> [[installment_no, open, due], ...] in due order
    by_customer: dict[tuple[str, str], list[str]]    # (customer, currency) -> invoices, oldest due first
    currencies: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, book: Book) -> OpenBook:
        inv = book.invoices.sort("due_date", "invoice_number")
        numbers = inv["invoice_number"].to_list()
        customers, currencies = inv["customer_id"].to_list(), inv["currency"].to_list()
        plan: dict[str, list[list[Any]]] = defaultdict(list)
        for number, no, open_minor, due in book.installments.sort("invoice_number", "installment_no").select(
            "invoice_number", "installment_no", "open_minor", "due_date"
        ).iter_rows():
            plan[number].append([no, open_minor, due])
        by_customer: dict[tuple[str, str], list[str]] = defaultdict(list)
        for number, customer, currency, open_minor in zip(
            numbers, customers, currencies, inv["open_minor"].to_list(), strict=True
        ):
            if open_minor > 0:
                by_customer[(customer, currency)].append(number)
        return cls(
            customer=dict(zip(numbers, customers, strict=True)),
            currency=dict(zip(numbers, currencies, strict=True)),
            due=dict(zip(numbers, inv["due_date"].to_list(), strict=True)),
            open=dict(zip(numbers, inv["open_minor"].to_list(), strict=True)),
            plan=dict(plan),
            by_customer=dict(by_customer),
            currencies={c for (_, c), items in by_customer.items() if items},
        )

    def items(self, customer: str, currency: str) -> tuple[list[tuple[Key, int]], list[list[tuple[Key, int]]]]:
        """(open invoices without a plan, each plan's open installments in due order) of one customer."""
        singles, runs = [], []
        for number in self.by_customer.get((customer, currency), ()):
            if self.open[number] <= 0:
                continue
            installments = [(no, o) for no, o, _ in self.plan.get(number, ()) if o > 0]
            if installments:
                runs.append([((number, no), o) for no, o in installments])
            else:
                singles.append(((number, None), self.open[number]))
        return singles, runs

    def take(self, number: str, amount: int) -> list[tuple[Key, int]]:
        """Allocate up to `amount` to an invoice (through its plan's installments in due order)."""
        taken: list[tuple[Key, int]] = []
        left = min(amount, self.open[number])
        for entry in self.plan.get(number, ()):
            if left <= 0:
                break
            part = min(left, entry[1])
            if part > 0:
                entry[1] -= part
                taken.append(((number, entry[0]), part))
                left -= part
        planned = sum(a for _, a in taken)
        if left > 0:
            taken.append(((number, None), left))
        self.open[number] -= planned + max(left, 0)
        return taken

    def take_key(self, key: Key, amount: int) -> list[tuple[Key, int]]:
        number, no = key
        if no is None:
            return self.take(number, amount)
        for entry in self.plan[number]:
            if entry[0] == no:
                entry[1] -= amount
        self.open[number] -= amount
        return [(key, amount)]

    def open_of(self, key: Key) -> int:
        number, no = key
        if no is None:
            return self.open[number]
        return next(o for n, o, _ in self.plan[number] if n == no)


@dataclass
class Thresholds:
    """The rules of one run in the units the engine compares: minor units per currency, per mille."""

    threshold: float
    tolerance: dict[str, int]
    discount_per_mille: int
    name_threshold: float
    name_low: float
    name_margin: float
    max_items: int
    max_size: int
    joint_candidates: int
    confidence: dict[str, float]
    non_receivable: list[tuple[str, str]]  # (category, case-insensitive regular expression)

    @classmethod
    def of(cls, rules: MatchingRules, currencies: set[str]) -> Thresholds:
        return cls(
            threshold=rules.auto_post_threshold,
            tolerance={c: to_minor(rules.tolerance(c), c, exact=False) for c in currencies},
            discount_per_mille=int(rules.early_payment_discount * 1000),
            name_threshold=rules.name_threshold,
            name_low=rules.name_low,
            name_margin=rules.name_margin,
            max_items=rules.max_subset_items,
            max_size=rules.max_subset_size,
            joint_candidates=rules.name_amount_candidates,
            confidence={f.name: getattr(rules.confidence, f.name) for f in fields(rules.confidence)},
            non_receivable=list(rules.non_receivable.items()),
        )


@dataclass
class Decision:
    # (key, amount, kind), kind invoice | on_account | write_off; a write_off is negative beside the invoice
    # row that settles the item in full, so the rows add up to the line's amount
    rows: list[tuple[Key, int, str]] = field(default_factory=list)
    customer: str | None = None
    rule: str = ""
    confidence: float = 0.0
    reason: str | None = None            # set when the line is queued
    suggestions: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def _queue(reason: str, customer: str | None = None, suggestions: list[str] | None = None, **evidence: Any) -> Decision:
    return Decision(customer=customer, reason=reason, suggestions=suggestions or [], evidence=evidence)


class Matcher:
    """Decides lines one by one against an OpenBook (one instance per run or per partition)."""

    def __init__(self, book: OpenBook, settings: Thresholds, refs: dict[int, list[tuple[str, str]]],
                 payers: dict[int, list[tuple[str, str, float, str]]], non_receivable: dict[int, str]) -> None:
        self.book, self.s, self.refs, self.payers = book, settings, refs, payers
        self.non_receivable = non_receivable

    # --- payer ---------------------------------------------------------------

    def identify(self, line_id: int) -> tuple[str | None, str, float, dict[str, Any]]:
        """(customer or None, how, confidence, evidence) from the payer's account and name."""
        found = self.payers.get(line_id, [])
        accounts = sorted({c for c, by, _, _ in found if by == "account"})
        names = [(c, by, score, raw) for c, by, score, raw in found if by != "account"]
        ranked = sorted(names, key=lambda x: -x[2])
        top = [{"customer": c, "by": by, "score": round(score, 1), "name": raw} for c, by, score, raw in ranked[:3]]
        if len(accounts) == 1:
            return accounts[0], "account", self.s.confidence["account"], {"payer_account": accounts[0], "names": top}
        if len(accounts) > 1:  # one account used by several customers (a parent paying for its subsidiaries)
            ranked = [r for r in ranked if r[0] in accounts] or [(c, "account", 0.0, "") for c in accounts]
        if not ranked:
            return None, "none", 0.0, {"names": top}
        best = ranked[0]
        runner = next((r for r in ranked if r[0] != best[0]), None)
        margin = best[2] - (runner[2] if runner else 0.0)
        evidence = {"names": top, "margin": round(margin, 1)}
        if best[2] >= self.s.name_threshold and margin >= self.s.name_margin:
            key = "name_strong" if best[2] >= 95 else "name"
            return best[0], "name", self.s.confidence[key], evidence
        if best[2] >= self.s.name_low:
            return best[0], "name_weak" if margin >= self.s.name_margin else "name_close", self.s.confidence["name_weak"], evidence
        return None, "none", 0.0, evidence

    # --- references ----------------------------------------------------------

    def by_reference(self, line: dict, named: list[tuple[str, str]], payer: str | None) -> Decision:
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        how = max((h for _, h in named), key=lambda h: ("fuzzy", "joined", "core", "exact").index(h))
        numbers = sorted({n for n, _ in named}, key=lambda n: (b.due[n], n))
        evidence: dict[str, Any] = {"references": {n: h for n, h in named}}
        same_ccy = [n for n in numbers if b.currency[n] == currency]
        if not same_ccy:
            return _queue("unknown_currency", b.customer[numbers[0]], numbers, **evidence)
        customers = {b.customer[n] for n in same_ccy}
        open_numbers = [n for n in same_ccy if b.open[n] > 0]
        if len(customers) > 1:
            total = sum(b.open[n] for n in open_numbers)
            if total != amount:
                mine = [n for n in same_ccy if b.customer[n] == payer]
                if not mine:
                    return _queue("ambiguous", None, same_ccy, **evidence, customers=sorted(customers))
                same_ccy, open_numbers = mine, [n for n in mine if b.open[n] > 0]
                evidence["chosen_by_payer"] = payer
        if not open_numbers:
            return _queue("duplicate_suspect", b.customer[same_ccy[0]], same_ccy, **evidence,
                          why="every invoice named is already paid")
        customer = b.customer[open_numbers[0]]
        confidence = self.s.confidence[how]
        total = sum(b.open[n] for n in open_numbers)
        tolerance = self.s.tolerance.get(currency, 0)
        rows: list[tuple[Key, int, str]] = []
        if amount >= total:
            for n in open_numbers:
                rows += [(k, a, "invoice") for k, a in b.take(n, b.open[n])]
            excess, rule = amount - total, "reference"
            if excess:
                extra = self._excess_combination(customer, currency, excess, set(open_numbers))
                if extra:
                    for key in extra:
                        rows += [(k, a, "invoice") for k, a in b.take_key(key, b.open_of(key))]
                    rule, evidence["combination"] = "reference_plus_combination", [k[0] for k in extra]
                else:
                    rows.append(((customer, None), excess, "on_account"))
                    rule = "reference_overpayment"
            return Decision(rows, customer, rule, confidence, evidence=evidence)
        short = total - amount
        discount = (total * self.s.discount_per_mille + 500) // 1000
        if short <= tolerance or (len(open_numbers) == 1 and abs(short - discount) <= 1 and discount > 0):
            reason = "bank_fee_or_rounding" if short <= tolerance else "early_payment_discount"
            last = open_numbers[-1]
            for n in open_numbers:  # the items are settled in full; the difference is an expense
                rows += [(k, a, "invoice") for k, a in b.take(n, b.open[n])]
            rows.append(((last, None), -short, "write_off"))
            evidence["write_off"] = reason
            return Decision(rows, customer, f"reference_{reason}", confidence - 0.01, evidence=evidence)
        if len(open_numbers) == 1 and amounts.prefix_runs([self._plan_run(open_numbers[0])], amount):
            rows = [(k, a, "invoice") for k, a in b.take(open_numbers[0], amount)]
            return Decision(rows, customer, "reference_installments", confidence, evidence=evidence)
        left = amount  # a partial payment: oldest due first
        for n in open_numbers:
            if left <= 0:
                break
            part = min(left, b.open[n])
            rows += [(k, a, "invoice") for k, a in b.take(n, part)]
            left -= part
        return Decision(rows, customer, "reference_partial", confidence - 0.02, evidence=evidence)

    def _plan_run(self, number: str) -> list[tuple[Key, int]]:
        return [((number, no), o) for no, o, _ in self.book.plan.get(number, ()) if o > 0]

    def _excess_combination(self, customer: str, currency: str, excess: int, named: set[str]) -> list[Key] | None:
        singles, _ = self.book.items(customer, currency)
        others = [(k, a) for k, a in singles if k[0] not in named]
        fits = amounts.singles(others, excess)
        if not fits:
            fits = amounts.subsets(others, excess, max_items=self.s.max_items, max_size=self.s.max_size, limit=2)
        return fits[0] if len(fits) == 1 else None

    def by_fuzzy(self, line: dict, named: list[tuple[str, str]]) -> Decision | None:
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        tolerance = self.s.tolerance.get(currency, 0)
        agreeing = [n for n, _ in named if b.currency[n] == currency and b.open[n] > 0
                    and 0 <= b.open[n] - amount <= tolerance]
        if len(agreeing) != 1:
            return None
        number = agreeing[0]
        short = b.open[number] - amount
        rows = [(k, a, "invoice") for k, a in b.take(number, b.open[number])]
        if short:
            rows.append(((number, None), -short, "write_off"))
        evidence = {"references": {n: h for n, h in named}, "amount_agrees": True}
        return Decision(rows, b.customer[number], "fuzzy_reference", self.s.confidence["fuzzy"], evidence=evidence)

    # --- amounts within an identified customer ------------------------------

    def by_amount(self, line: dict, customer: str, how: str, confidence: float, payer_evidence: dict) -> Decision:
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        evidence = {"payer": {"customer": customer, "by": how, **payer_evidence}}
        singles, runs = b.items(customer, currency)
        if not singles and not runs:
            other = any(b.by_customer.get((customer, c)) for c in b.currencies if c != currency)
            return _queue("unknown_currency" if other else "no_candidate", customer, [], **evidence)
        fits = amounts.singles(singles, amount) + amounts.prefix_runs(runs, amount)
        rule = "amount_unique"
        if not fits:
            flat = singles + [r[0] for r in runs]  # a plan offers only its next installment to a combination
            fits, rule = amounts.subsets(flat, amount, max_items=self.s.max_items, max_size=self.s.max_size), "amount_combination"
        write_off: tuple[Key, int, str] | None = None
        if not fits:
            tolerance = self.s.tolerance.get(currency, 0)
            short = amounts.short_by(singles, amount, tolerance)
            reason = "bank_fee_or_rounding"
            if not short:
                short, reason = amounts.discounted(singles, amount, self.s.discount_per_mille), "early_payment_discount"
            if len(short) == 1:
                (key, diff), = short
                fits, rule, write_off = [[key]], f"amount_{reason}", (key, diff, reason)
        if len(fits) > 1:
            evidence["competing"] = [[k[0] if k[1] is None else f"{k[0]}#{k[1]}" for k in fit] for fit in fits]
            return _queue("ambiguous", customer, _flat_numbers(fits), **evidence)
        if not fits:
            closest = sorted(singles + [r[0] for r in runs], key=lambda item: abs(item[1] - amount))[:5]
            return _queue("amount_mismatch", customer, [k[0] for k, _ in closest], **evidence)
        rows: list[tuple[Key, int, str]] = []
        for key in fits[0]:
            rows += [(k, a, "invoice") for k, a in b.take_key(key, b.open_of(key))]
        if write_off:
            rows.append(((write_off[0][0], None), -write_off[1], "write_off"))
            evidence["write_off"] = write_off[2]
        penalty = 0.01 * (len(fits[0]) > 1) + 0.01 * (write_off is not None)
        return Decision(rows, customer, rule, confidence - penalty, evidence=evidence)

    def by_name_and_amount(self, line: dict, payer_evidence: dict) -> Decision | None:
        """Similar names, one amount: among the customers whose name is close enough, the one (and only one)
        with open items that the payment fits exactly. Two such customers: a person decides."""
        amount, currency = line["amount_minor"], line["currency"]
        close = [(c, score) for c, by, score, _ in self.payers.get(line["bank_line_id"], [])
                 if by != "account" and score >= self.s.name_low][: self.s.joint_candidates]
        fitting = []
        for customer, score in close:
            singles, runs = self.book.items(customer, currency)
            if amounts.singles(singles, amount) or amounts.prefix_runs(runs, amount):
                fitting.append((customer, score))
        if len(fitting) != 1 or len(close) < 1:
            return None
        customer, score = fitting[0]
        decision = self.by_amount(line, customer, "name_and_amount", self.s.confidence["name_and_amount"],
                                  {**payer_evidence, "score": round(score, 1),
                                   "others_close": [c for c, _ in close if c != customer]})
        return decision if decision.reason is None else None

    # --- one line ------------------------------------------------------------

    def decide(self, line: dict) -> Decision:
        line_id = line["bank_line_id"]
        category = self.non_receivable.get(line_id)
        if category:
            return _queue("non_receivable", None, [], category=category)
        named = self.refs.get(line_id, [])
        strong = [(n, h) for n, h in named if h != "fuzzy"]
        payer, how, payer_conf, payer_evidence = self.identify(line_id)
        if strong:
            decision = self.by_reference(line, strong, payer)
            decision.evidence.setdefault("payer", {"customer": payer, "by": how, **payer_evidence})
            return decision
        fuzzy = [(n, h) for n, h in named if h == "fuzzy"]
        if fuzzy:
            decision = self.by_fuzzy(line, fuzzy)
            if decision:
                return decision
        if line["currency"] not in self.book.currencies:
            return _queue("unknown_currency", payer, [], payer={"customer": payer, "by": how, **payer_evidence})
        if payer and how in ("account", "name"):
            return self.by_amount(line, payer, how, payer_conf, payer_evidence)
        joint = self.by_name_and_amount(line, payer_evidence)
        if joint:
            return joint
        if payer:  # a name that is close but not certain: say who it probably is
            singles, runs = self.book.items(payer, line["currency"])
            closest = sorted(singles + [r[0] for r in runs], key=lambda item: abs(item[1] - line["amount_minor"]))[:5]
            reason = "ambiguous" if how == "name_close" else "low_confidence"
            return _queue(reason, payer, [k[0] for k, _ in closest] + [n for n, _ in fuzzy],
                          payer={"customer": payer, "by": how, **payer_evidence})
        return _queue("no_candidate", None, [n for n, _ in fuzzy], payer=payer_evidence)


def _flat_numbers(fits: list[list[Key]]) -> list[str]:
    seen: dict[str, None] = {}
    for fit in fits:
        for number, _ in fit:
            seen.setdefault(number)
    return list(seen)


def _group(frame: pl.DataFrame, key: str, values: list[str]) -> dict[int, list[tuple]]:
    grouped: dict[int, list[tuple]] = defaultdict(list)
    for row in frame.select(key, *values).iter_rows():
        grouped[row[0]].append(row[1:])
    return grouped


@dataclass
class Prepared:
    """Everything the per-line decisions need, computed once over all lines (vectorised)."""

    credits: pl.DataFrame          # credit lines in booking order
    skipped: pl.DataFrame          # debits
    settings: Thresholds
    currencies: set[str]           # currencies with open items anywhere in the book
    refs: dict[int, list[tuple]]   # line -> [(invoice, found_by)]
    payers: dict[int, list[tuple]]  # line -> [(customer, by, score, name)]
    non_receivable: dict[int, str]  # line -> category, for credits that are not receivables


def prepare(lines: pl.DataFrame, book: Book, rules: MatchingRules) -> Prepared:
    lines = frames.conform(lines, frames.MATCH_LINES)
    credits = lines.filter(pl.col("amount_minor") > 0).sort("booking_date", "bank_line_id")
    skipped = lines.filter(pl.col("amount_minor") <= 0).select("bank_line_id", pl.lit("debit").alias("reason"))
    currencies = set(book.invoices.filter(pl.col("open_minor") > 0)["currency"].unique().to_list())
    settings = Thresholds.of(rules, set(credits["currency"].unique().to_list()) | currencies)
    pairs = reference_pairs(credits, book.invoices)
    refs = _group(pairs, "bank_line_id", ["invoice_number", "found_by"])
    strong = pairs.filter(pl.col("found_by") != "fuzzy").select("bank_line_id").unique()
    needs_names = credits.join(strong, on="bank_line_id", how="anti")
    payers = _group(payer_candidates(credits, book.customers, book.aliases, book.payer_accounts, needs_names),
                    "bank_line_id", ["customer_id", "by", "score", "matched_name"])
    return Prepared(frames.conform(credits, frames.MATCH_LINES), frames.conform(skipped, frames.SKIPPED),
                    settings, currencies, refs, payers, _non_receivable(credits, settings))


def _non_receivable(credits: pl.DataFrame, settings: Thresholds) -> dict[int, str]:
    """line -> the first category whose pattern matches its remittance, bank code or payer name."""
    if not settings.non_receivable or credits.height == 0:
        return {}
    text = pl.concat_str([pl.col(c).fill_null("") for c in ("remittance", "bank_code", "counterparty_name")],
                         separator=" ")
    category = pl.lit(None, dtype=pl.String)
    for name, pattern in reversed(settings.non_receivable):
        category = pl.when(text.str.contains(f"(?i){pattern}")).then(pl.lit(name)).otherwise(category)
    found = credits.select("bank_line_id", category.alias("category")).drop_nulls("category")
    return dict(found.iter_rows())


def decide_lines(prepared: Prepared, credits: pl.DataFrame, book: Book) -> MatchResult:
    """Decide `credits` (booking order) against `book`: the whole book, or one partition's customers."""
    open_book = OpenBook.of(book)
    open_book.currencies = prepared.currencies  # "no open item in this currency" is a question about the whole book
    matcher = Matcher(open_book, prepared.settings, prepared.refs, prepared.payers, prepared.non_receivable)
    allocations: list[dict] = []
    exceptions: list[dict] = []
    skipped_rows: list[dict] = []
    for line in credits.iter_rows(named=True):
        decision = matcher.decide(line)
        if decision.reason is None and decision.confidence < prepared.settings.threshold:
            _undo(open_book, decision)
            decision = _queue("low_confidence", decision.customer, _numbers(decision), **decision.evidence,
                              would_post=decision.rule, confidence=decision.confidence)
        if decision.reason == "non_receivable":  # interest, card settlements: not receivables, not the queue's business
            skipped_rows.append({"bank_line_id": line["bank_line_id"],
                                 "reason": f"non_receivable:{decision.evidence.get('category', 'other')}"})
            continue
        if decision.reason:
            exceptions.append({
                "bank_line_id": line["bank_line_id"], "reason": decision.reason,
                "suggestions": "|".join(decision.suggestions) or None, "customer_id": decision.customer,
                "evidence": json.dumps(decision.evidence, default=str),
            })
            continue
        evidence = json.dumps({"rule": decision.rule, **decision.evidence}, default=str)
        for (number, no), amount, kind in decision.rows:
            on_account = kind == "on_account"
            allocations.append({
                "bank_line_id": line["bank_line_id"],
                "kind": "installment" if (kind == "invoice" and no is not None) else kind,
                "customer_id": decision.customer if on_account else open_book.customer[number],
                "invoice_number": None if on_account else number,
                "installment_no": None if on_account else no,
                "amount_minor": amount, "currency": line["currency"], "rule": decision.rule,
                "confidence": round(decision.confidence, 4), "evidence": evidence,
            })
    return MatchResult(
        allocations=frames.from_records(allocations, frames.ALLOCATIONS),
        exceptions=frames.from_records(exceptions, frames.EXCEPTIONS),
        skipped=frames.from_records(skipped_rows, frames.SKIPPED),
    )


def match_lines(lines: pl.DataFrame, book: Book, rules: MatchingRules) -> MatchResult:
    """Match every line against the whole book, in one process."""
    prepared = prepare(lines, book, rules)
    decided = decide_lines(prepared, prepared.credits, book)
    return MatchResult(decided.allocations, decided.exceptions, pl.concat([prepared.skipped, decided.skipped]))


def _numbers(decision: Decision) -> list[str]:
    return list(dict.fromkeys(n for (n, _), _, kind in decision.rows if kind != "on_account"))


def _undo(book: OpenBook, decision: Decision) -> None:
    """Give back what a decision below the threshold took from the in-run book."""
    for (number, no), amount, kind in decision.rows:
        if kind in ("on_account", "write_off"):
            continue
        book.open[number] += amount
        if no is not None:
            for entry in book.plan[number]:
                if entry[0] == no:
                    entry[1] += amount
