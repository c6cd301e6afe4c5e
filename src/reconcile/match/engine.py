"""The matching pipeline: references, then payer, then amounts; post only what is certain.

1. Candidates, vectorised over all lines at once: invoices each line names
   (references.py) and customers its payer details point to (payers.py).
2. A decision per line over a small in-memory view of the open book, in a
   fixed order: first every line whose remittance names invoices (so a
   reference is never beaten to its invoice by a guess from an amount), then
   the others, each group in booking order. Then every queued line whose
   candidates' open items changed since it was decided is decided again, in
   the same order, until nothing changes: the run ends at a fixpoint, so a
   second run on the same input posts nothing more.
   - named invoices (exact, core or joined reference) decide the customer and
     the items: paid in full, short within tolerance (write-off), with an
     early-payment discount, partly (credit notes first, then oldest due
     first), or with an excess kept on account;
   - a fuzzy reference (transposed, truncated) counts only if the amount
     picks exactly one of its invoices;
   - otherwise an identified payer (known account, or a name that clearly beats
     every other customer) and an amount that fits exactly one way: one item, a
     payment plan's next installments, one combination of items (credit notes
     included), one item within tolerance;
   - everything else is queued with a reason code, every candidate within the
     margin as a suggestion, and the evidence.
Every allocation carries its rule, confidence and evidence (signals, runner-up, margin) as compact JSON
with sorted keys. Nothing here depends on set or dict iteration order or on the order of input rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import polars as pl

from reconcile.config import MatchingRules
from reconcile.core import frames
from reconcile.core.evidence import evidence_text, suggestions_text
from reconcile.core.money import to_minor
from reconcile.match import amounts
from reconcile.match.book import Book, MatchResult
from reconcile.match.payers import payer_candidates
from reconcile.match.references import reference_pairs

Key = tuple[str, int | None]  # (invoice_number, installment_no or None)
# (open items without a plan, each plan's open installments in due order)
Items = tuple[list[tuple[Key, int]], list[list[tuple[Key, int]]]]
STRENGTH = {"fuzzy": 1, "joined": 2, "core": 3, "exact": 4}
SUGGESTIONS = 8               # invoices suggested for a queued line, best first


@dataclass
class OpenBook:
    """The run's view of open items; open amounts go down as lines are decided (credit notes: up to 0)."""

    customer: dict[str, str]
    currency: dict[str, str]
    due: dict[str, date]
    open: dict[str, int]
    plan: dict[str, list[list[Any]]]                 # invoice -> [[installment_no, open, due], ...] in due order
    by_customer: dict[tuple[str, str], list[str]]    # (customer, currency) -> items, oldest due first
    currencies: set[str] = field(default_factory=set)
    cache: dict[tuple[str, str], Items] = field(default_factory=dict)  # items() until one of them changes

    @classmethod
    def of(cls, book: Book) -> OpenBook:
        inv = book.invoices.sort("due_date", "invoice_number")
        numbers = inv["invoice_number"].to_list()
        customers, currencies = inv["customer_id"].to_list(), inv["currency"].to_list()
        plan: dict[str, list[list[Any]]] = defaultdict(list)
        for number, no, open_minor, due in book.installments.sort(
            "invoice_number", "due_date", "installment_no"
        ).select("invoice_number", "installment_no", "open_minor", "due_date").iter_rows():
            plan[number].append([no, open_minor, due])
        grouped = inv.filter(pl.col("open_minor") != 0).group_by("customer_id", "currency", maintain_order=True) \
            .agg("invoice_number")  # in due order within each customer, as sorted above
        by_customer = {(c, ccy): items for c, ccy, items in grouped.iter_rows()}
        return cls(
            customer=dict(zip(numbers, customers, strict=True)),
            currency=dict(zip(numbers, currencies, strict=True)),
            due=dict(zip(numbers, inv["due_date"].to_list(), strict=True)),
            open=dict(zip(numbers, inv["open_minor"].to_list(), strict=True)),
            plan=dict(plan),
            by_customer=by_customer,
            currencies=set(inv.filter(pl.col("open_minor") > 0)["currency"].unique().to_list()),
        )

    def items(self, customer: str, currency: str) -> Items:
        """(open items without a plan, credit notes included; each plan's open installments in due order)."""
        cached = self.cache.get((customer, currency))
        if cached is not None:
            return cached
        singles: list[tuple[Key, int]] = []
        runs: list[list[tuple[Key, int]]] = []
        for number in self.by_customer.get((customer, currency), ()):
            if self.open[number] == 0:
                continue
            installments = [(no, o) for no, o, _ in self.plan.get(number, ()) if o > 0]
            if installments and self.open[number] > 0:
                runs.append([((number, no), o) for no, o in installments])
            else:
                singles.append(((number, None), self.open[number]))
        self.cache[(customer, currency)] = singles, runs
        return singles, runs

    def changed(self, number: str) -> None:
        """An item's open amount changed: its customer's items are read afresh."""
        self.cache.pop((self.customer[number], self.currency[number]), None)

    def take(self, number: str, amount: int) -> list[tuple[Key, int]]:
        """Allocate up to `amount` to an invoice (through its plan's installments in due order); a credit
        note is always taken whole."""
        self.changed(number)
        if self.open[number] < 0:
            taken_note: list[tuple[Key, int]] = [((number, None), self.open[number])]
            self.open[number] = 0
            return taken_note
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
        self.changed(number)
        for entry in self.plan[number]:
            if entry[0] == no:
                entry[1] -= amount
        self.open[number] -= amount
        return [(key, amount)]

    def open_of(self, key: Key) -> int:
        number, no = key
        if no is None:
            return self.open[number]
        return int(next(o for n, o, _ in self.plan[number] if n == no))


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
    return Decision(customer=customer, reason=reason, suggestions=list(dict.fromkeys(suggestions or [])),
                    evidence=evidence)


def _key_text(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[0]}#{key[1]}"


class Matcher:
    """Decides lines one by one against an OpenBook (one instance per run or per partition)."""

    def __init__(self, book: OpenBook, settings: Thresholds, refs: dict[int, list[tuple[str, str]]],
                 payers: dict[int, list[tuple[str, str, float, str]]], non_receivable: dict[int, str]) -> None:
        self.book, self.s, self.refs, self.payers = book, settings, refs, payers
        self.non_receivable = non_receivable

    # --- payer ---------------------------------------------------------------

    def identify(self, line_id: int) -> tuple[str | None, str, float, dict[str, Any]]:
        """(customer or None, how, confidence, evidence) from the payer's account and name.

        The evidence names the runner-up and the margin, and under `tied` every customer whose name is
        within the margin of the best (best first, then by id): none of them is picked over the others.
        """
        found = self.payers.get(line_id)
        if not found:
            return None, "none", 0.0, {"names": []}
        accounts = sorted({c for c, by, _, _ in found if by == "account"})
        names = [(c, by, score, raw) for c, by, score, raw in found if by != "account"]
        ranked = sorted(names, key=lambda x: (-x[2], x[0], x[1], x[3]))
        top = [{"customer": c, "by": by, "score": round(score, 1), "name": raw} for c, by, score, raw in ranked[:3]]
        if len(accounts) == 1:
            return accounts[0], "account", self.s.confidence["account"], {"payer_account": accounts[0], "names": top}
        shared = {}
        if len(accounts) > 1:  # one account used by several customers (a parent paying for its subsidiaries)
            ranked = [r for r in ranked if r[0] in accounts] or [(c, "account", 0.0, "") for c in accounts]
            shared = {"shared_account": accounts}
        if not ranked:
            return None, "none", 0.0, {"names": top}
        best = ranked[0]
        runner = next((r for r in ranked if r[0] != best[0]), None)
        margin = best[2] - (runner[2] if runner else 0.0)
        tied = sorted({r[0] for r in ranked if best[2] - r[2] < self.s.name_margin and r[2] >= self.s.name_low},
                      key=lambda c: (-max(r[2] for r in ranked if r[0] == c), c))
        evidence = {"names": top, "margin": round(margin, 1), "margin_of": "name score",
                    "runner_up": runner[0] if runner else None, **shared}
        if len(tied) > 1:
            evidence["tied"] = tied
        if best[2] >= self.s.name_threshold and margin >= self.s.name_margin:
            key = "name_strong" if best[2] >= 95 else "name"
            return best[0], "name", self.s.confidence[key], evidence
        if best[2] >= self.s.name_low:
            how = "name_weak" if margin >= self.s.name_margin else "name_close"
            return best[0], how, self.s.confidence["name_weak"], evidence
        return None, "none", 0.0, evidence

    def _closest(self, customers: list[str], currency: str, amount: int, first: Sequence[str] = ()) -> list[str]:
        """Open items of these customers, the nearest to `amount` first (exact fits, then by difference, then
        the customers' order, then due order): what a person would look at."""
        ranked = []
        for rank, customer in enumerate(customers):
            singles, runs = self.book.items(customer, currency)
            for position, (key, open_minor) in enumerate(singles + [r[0] for r in runs]):
                ranked.append((abs(open_minor - amount), rank, position, key[0]))
        ranked.sort()
        return list(dict.fromkeys([*first, *(n for *_, n in ranked)]))[:SUGGESTIONS]

    # --- references ----------------------------------------------------------

    def by_reference(self, line: dict[str, Any], named: list[tuple[str, str]], payer: str | None) -> Decision:
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        if len(named) == 1:  # the common case, one invoice named and paid in full, without the general path
            number, how = named[0]
            if b.open[number] == amount and b.currency[number] == currency and not b.plan.get(number):
                b.open[number] = 0
                b.changed(number)
                return Decision([((number, None), amount, "invoice")], b.customer[number], "reference",
                                self.s.confidence[how], evidence={"references": {number: how}})
        how = max((h for _, h in named), key=STRENGTH.__getitem__)
        numbers = [named[0][0]] if len(named) == 1 else sorted({n for n, _ in named}, key=lambda n: (b.due[n], n))
        evidence: dict[str, Any] = {"references": {n: h for n, h in named}}
        same_ccy = [n for n in numbers if b.currency[n] == currency]
        if not same_ccy:
            return _queue("unknown_currency", b.customer[numbers[0]], numbers, **evidence)
        customers = sorted({b.customer[n] for n in same_ccy})
        open_numbers = [n for n in same_ccy if b.open[n] != 0]
        if len(customers) > 1:
            total = sum(b.open[n] for n in open_numbers)
            if total != amount:
                mine = [n for n in same_ccy if b.customer[n] == payer]
                if not mine:
                    return _queue("ambiguous", None, same_ccy, **evidence, customers=customers)
                same_ccy, open_numbers = mine, [n for n in mine if b.open[n] != 0]
                evidence["chosen_by_payer"] = payer
        if not any(b.open[n] > 0 for n in open_numbers):
            if open_numbers:  # only credit notes named: the invoices they net against must be found by amount
                return self._notes_only(line, open_numbers, evidence)
            return _queue("duplicate_suspect", b.customer[same_ccy[0]], same_ccy, **evidence,
                          why="every invoice named is already paid")
        customer = b.customer[next(n for n in open_numbers if b.open[n] > 0)]
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
        positives = [n for n in open_numbers if b.open[n] > 0]
        discount = (total * self.s.discount_per_mille + 500) // 1000
        if short <= tolerance or (len(open_numbers) == 1 and abs(short - discount) <= 1 and discount > 0):
            reason = "bank_fee_or_rounding" if short <= tolerance else "early_payment_discount"
            for n in open_numbers:  # the items are settled in full; the difference is an expense
                rows += [(k, a, "invoice") for k, a in b.take(n, b.open[n])]
            rows.append(((positives[-1], None), -short, "write_off"))
            evidence["write_off"] = reason
            return Decision(rows, customer, f"reference_{reason}", confidence - 0.01, evidence=evidence)
        if len(open_numbers) == 1 and amounts.prefix_runs([self._plan_run(open_numbers[0])], amount):
            rows = [(k, a, "invoice") for k, a in b.take(open_numbers[0], amount)]
            return Decision(rows, customer, "reference_installments", confidence, evidence=evidence)
        left = amount  # a partial payment: credit notes named count in full, then the invoices oldest due first
        for n in open_numbers:
            if b.open[n] < 0:
                left -= b.open[n]
                rows += [(k, a, "invoice") for k, a in b.take(n, 0)]
        for n in positives:
            if left <= 0:
                break
            part = min(left, b.open[n])
            rows += [(k, a, "invoice") for k, a in b.take(n, part)]
            left -= part
        return Decision(rows, customer, "reference_partial", confidence - 0.02, evidence=evidence)

    def _notes_only(self, line: dict[str, Any], notes: list[str], evidence: dict[str, Any]) -> Decision:
        """Only credit notes named: the payment is the customer's invoices less the notes, one way only."""
        b, amount = self.book, line["amount_minor"]
        customer = b.customer[notes[0]]
        extra = self._excess_combination(customer, line["currency"], amount - sum(b.open[n] for n in notes),
                                         set(notes))
        if not extra:
            return _queue("amount_mismatch", customer, self._closest([customer], line["currency"], amount, notes),
                          **evidence)
        rows: list[tuple[Key, int, str]] = []
        for n in notes:
            rows += [(k, a, "invoice") for k, a in b.take(n, 0)]
        for key in extra:
            rows += [(k, a, "invoice") for k, a in b.take_key(key, b.open_of(key))]
        evidence["combination"] = [k[0] for k in extra]
        return Decision(rows, customer, "reference_plus_combination", self.s.confidence["core"], evidence=evidence)

    def _plan_run(self, number: str) -> list[tuple[Key, int]]:
        return [((number, no), o) for no, o, _ in self.book.plan.get(number, ()) if o > 0]

    def _excess_combination(self, customer: str, currency: str, excess: int, named: set[str]) -> list[Key] | None:
        singles, _ = self.book.items(customer, currency)
        others = [(k, a) for k, a in singles if k[0] not in named]
        fits = amounts.singles(others, excess)
        if not fits:
            fits = amounts.subsets(others, excess, max_items=self.s.max_items, max_size=self.s.max_size, limit=2)
        return fits[0] if len(fits) == 1 else None

    def by_fuzzy(self, line: dict[str, Any], named: list[tuple[str, str]], payer: str | None) -> Decision | None:
        """A transposed or truncated number counts when the amount picks exactly one of its invoices:
        one paid exactly, else one paid short within tolerance; a tie is broken only by the identified payer."""
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        tolerance = self.s.tolerance.get(currency, 0)
        open_ = sorted({n for n, _ in named if b.currency[n] == currency and b.open[n] > 0})
        exact = [n for n in open_ if b.open[n] == amount]
        near = [n for n in open_ if 0 < b.open[n] - amount <= tolerance]
        agreeing = exact or near
        if len(agreeing) > 1 and payer:
            agreeing = [n for n in agreeing if b.customer[n] == payer] or agreeing
        if len(agreeing) != 1:
            return None
        number = agreeing[0]
        short = b.open[number] - amount
        others = sorted((abs(b.open[n] - amount), n) for n in open_ if n != number)
        rows = [(k, a, "invoice") for k, a in b.take(number, b.open[number])]
        if short:
            rows.append(((number, None), -short, "write_off"))
        evidence = {"references": {n: h for n, h in named}, "amount_agrees": True,
                    "runner_up": others[0][1] if others else None, "margin": others[0][0] if others else None,
                    "margin_of": "amount difference (minor units) of the runner-up"}
        return Decision(rows, b.customer[number], "fuzzy_reference", self.s.confidence["fuzzy"], evidence=evidence)

    # --- amounts within an identified customer ------------------------------

    def _fits(self, customer: str, currency: str, amount: int, tolerant: bool = True
              ) -> tuple[list[list[Key]], str, tuple[Any, ...] | None]:
        """(fits, rule, write_off) of an amount within one customer's open items, the first kind that fits;
        a fit short by a fee or a discount only when `tolerant` (the payer is certain)."""
        singles, runs = self.book.items(customer, currency)
        fits = amounts.singles(singles, amount) + amounts.prefix_runs(runs, amount)
        if fits:
            return fits, "amount_unique", None
        flat = singles + [r[0] for r in runs]  # a plan offers only its next installment to a combination
        fits = amounts.subsets(flat, amount, max_items=self.s.max_items, max_size=self.s.max_size)
        if fits:
            return fits, "amount_combination", None
        if not tolerant:
            return [], "", None
        short = amounts.short_by(singles, amount, self.s.tolerance.get(currency, 0))
        reason = "bank_fee_or_rounding"
        if not short:
            short, reason = amounts.discounted(singles, amount, self.s.discount_per_mille), "early_payment_discount"
        if short:
            return [[key] for key, _ in short], f"amount_{reason}", (short, reason)
        return [], "", None

    def by_amount(self, line: dict[str, Any], customer: str, how: str, confidence: float,
                  payer_evidence: dict[str, Any]) -> Decision:
        b, amount, currency = self.book, line["amount_minor"], line["currency"]
        evidence: dict[str, Any] = {"payer": {"customer": customer, "by": how, **payer_evidence}}
        if "runner_up" in payer_evidence:  # the payer was told apart by name: that is the close call
            evidence["runner_up"], evidence["margin"] = payer_evidence["runner_up"], payer_evidence.get("margin")
            evidence["margin_of"] = "name score"
        singles, runs = b.items(customer, currency)
        if not singles and not runs:
            other = any(b.by_customer.get((customer, c)) for c in sorted(b.currencies) if c != currency)
            return _queue("unknown_currency" if other else "no_candidate", customer, [], **evidence)
        # a payer told by a name alone (not strongly) and an amount only near an item is not enough
        tolerant = how == "account" or confidence >= self.s.confidence["name_strong"]
        fits, rule, write_off = self._fits(customer, currency, amount, tolerant)
        if len(fits) > 1:
            evidence["competing"] = [[_key_text(k) for k in fit] for fit in fits]
            return _queue("ambiguous", customer, _flat_numbers(fits), **evidence)
        if not fits:
            return _queue("amount_mismatch", customer, self._closest([customer], currency, amount), **evidence)
        rows: list[tuple[Key, int, str]] = []
        for key in fits[0]:
            rows += [(k, a, "invoice") for k, a in b.take_key(key, b.open_of(key))]
        if write_off:
            (key, diff), = write_off[0]
            rows.append(((key[0], None), -diff, "write_off"))
            evidence["write_off"] = write_off[1]
        if "runner_up" not in evidence:  # known account: the close call is the nearest other open item
            near = sorted((abs(o - amount), k[0]) for k, o in b.items(customer, currency)[0])
            evidence["runner_up"], evidence["margin"] = (near[0][1], near[0][0]) if near else (None, None)
            evidence["margin_of"] = "amount difference (minor units) of the nearest other open item"
        penalty = 0.01 * (len(fits[0]) > 1) + 0.01 * (write_off is not None)
        return Decision(rows, customer, rule, confidence - penalty, evidence=evidence)

    def by_shared_account(self, line: dict[str, Any], payer_evidence: dict[str, Any]) -> Decision | None:
        """An account on file for several customers (a group's treasury): the one customer, among them, whose
        open items the amount fits exactly one way. Several: a person decides, shown each one's fits."""
        amount, currency = line["amount_minor"], line["currency"]
        customers = payer_evidence["shared_account"]
        fitting = [(c, fits) for c in customers for fits in [self._fits(c, currency, amount)[0]] if fits]
        if len(fitting) == 1 and len(fitting[0][1]) == 1:
            customer = fitting[0][0]
            evidence = {k: v for k, v in payer_evidence.items() if k not in ("runner_up", "margin", "margin_of")}
            return self.by_amount(line, customer, "account", self.s.confidence["account"], evidence)
        if len(fitting) > 1:
            return _queue("ambiguous", None, [n for _, fits in fitting for n in _flat_numbers(fits)],
                          payer={"by": "shared_account", **payer_evidence}, customers=[c for c, _ in fitting],
                          why="the amount fits open items of several customers that share the payer's account")
        return _queue("amount_mismatch", None, self._closest(customers, currency, amount),
                      payer={"by": "shared_account", **payer_evidence}, customers=customers)

    def by_name_and_amount(self, line: dict[str, Any], payer_evidence: dict[str, Any]) -> Decision | None:
        """Similar names, one amount: among the customers whose name is close enough, the one (and only one)
        with open items that the payment fits exactly. Several such customers: a person decides, and is
        shown the fitting items of every one of them."""
        amount, currency = line["amount_minor"], line["currency"]
        candidates = [(c, score) for c, by, score, _ in self.payers.get(line["bank_line_id"], [])
                      if by != "account" and score >= self.s.name_low]
        close = sorted(candidates, key=lambda x: (-x[1], x[0]))[: self.s.joint_candidates]
        fitting = []
        for customer, score in close:
            singles, runs = self.book.items(customer, currency)
            if amounts.singles(singles, amount) or amounts.prefix_runs(runs, amount):
                fitting.append((customer, score))
        if not fitting:
            return None
        if len(fitting) > 1:
            customers = [c for c, _ in fitting]
            fits = [n for c in customers for n in self._closest([c], currency, amount)[:1]]
            return _queue("ambiguous", None, fits + self._closest(customers, currency, amount),
                          payer=payer_evidence, customers=customers,
                          why="the amount fits open items of several customers with close names")
        customer, score = fitting[0]
        runner = next(((c, s) for c, s in close if c != customer), None)
        decision = self.by_amount(line, customer, "name_and_amount", self.s.confidence["name_and_amount"],
                                  {**payer_evidence, "score": round(score, 1),
                                   "others_close": [c for c, _ in close if c != customer],
                                   "runner_up": runner[0] if runner else None,
                                   "margin": round(score - runner[1], 1) if runner else None})
        return decision if decision.reason is None else None

    # --- one line ------------------------------------------------------------

    def decide(self, line: dict[str, Any]) -> Decision:
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
            found = self.by_fuzzy(line, fuzzy, payer)
            if found:
                return found
        fuzzy_numbers = self._fuzzy_suggestions(line, fuzzy)
        payer_info = {"customer": payer, "by": how, **payer_evidence}
        if line["currency"] not in self.book.currencies:
            return _queue("unknown_currency", payer, fuzzy_numbers, payer=payer_info)
        if payer_evidence.get("shared_account"):
            shared = self.by_shared_account(line, payer_evidence)
            if shared:
                return shared
        if payer and how in ("account", "name"):
            decision = self.by_amount(line, payer, how, payer_conf, payer_evidence)
            if decision.reason in ("amount_mismatch", "no_candidate", "unknown_currency") and how == "name":
                # the best name has nothing of this amount: another close name may have exactly one item
                joint = self.by_name_and_amount(line, payer_evidence)
                if joint and joint.reason is None:
                    return joint
            if decision.reason:
                decision.suggestions = list(dict.fromkeys(decision.suggestions + fuzzy_numbers))
            return decision
        joint = self.by_name_and_amount(line, payer_evidence)
        if joint:
            if joint.reason:
                joint.suggestions = list(dict.fromkeys(fuzzy_numbers + joint.suggestions))[:SUGGESTIONS]
            return joint
        if payer:  # a name that is close but not certain: every customer within the margin, nearest items first
            tied = payer_evidence.get("tied") or [payer]
            reason = "ambiguous" if how == "name_close" else "low_confidence"
            return _queue(reason, payer if len(tied) == 1 else None,
                          fuzzy_numbers + self._closest(tied, line["currency"], line["amount_minor"]),
                          payer=payer_info)
        return _queue("no_candidate", None, fuzzy_numbers, payer=payer_evidence)

    def _fuzzy_suggestions(self, line: dict[str, Any], fuzzy: list[tuple[str, str]]) -> list[str]:
        """Invoices a mangled number may mean, the nearest in amount first (a person checks them)."""
        b, amount = self.book, line["amount_minor"]
        ranked = sorted((b.open[n] <= 0, abs(b.open[n] - amount), n) for n, _ in fuzzy)
        return [n for *_, n in ranked][:SUGGESTIONS]


def _flat_numbers(fits: list[list[Key]]) -> list[str]:
    seen: dict[str, None] = {}
    for fit in fits:
        for number, _ in fit:
            seen.setdefault(number)
    return list(seen)


def _group(frame: pl.DataFrame, key: str, values: list[str]) -> dict[int, list[tuple[Any, ...]]]:
    grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
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
    refs: dict[int, list[tuple[Any, ...]]]   # line -> [(invoice, found_by)], by invoice number
    payers: dict[int, list[tuple[Any, ...]]]  # line -> [(customer, by, score, name)], best first
    non_receivable: dict[int, str]  # line -> category, for credits that are not receivables


def prepare(lines: pl.DataFrame, book: Book, rules: MatchingRules) -> Prepared:
    lines = frames.conform(lines, frames.MATCH_LINES).sort("bank_line_id")  # the input's row order counts for nothing
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


def _settle(matcher: Matcher, line: dict[str, Any], threshold: float) -> Decision:
    decision = matcher.decide(line)
    if decision.reason is None and decision.confidence < threshold:
        _undo(matcher.book, decision)
        decision = _queue("low_confidence", decision.customer, _numbers(decision), **decision.evidence,
                          would_post=decision.rule, confidence=decision.confidence)
    return decision


def decide_lines(prepared: Prepared, credits: pl.DataFrame, book: Book) -> MatchResult:
    """Decide `credits` against `book` (the whole book, or one partition's customers) to a fixpoint.

    Order: lines that name invoices, then the rest, each in booking order. Then, pass after pass in that
    same order, every queued line one of whose candidate customers had items taken after it was last
    decided is decided again, until a pass changes nothing. Each pass is a pure function of the previous
    state, so the result depends on the lines and the book only.
    """
    open_book = OpenBook.of(book)
    open_book.currencies = prepared.currencies  # "no open item in this currency" is a question about the whole book
    matcher = Matcher(open_book, prepared.settings, prepared.refs, prepared.payers, prepared.non_receivable)
    threshold = prepared.settings.threshold
    lines = credits.sort("booking_date", "bank_line_id").to_dicts()
    strong = {i for i, ref in prepared.refs.items() if any(h != "fuzzy" for _, h in ref)}
    # stable: booking order kept
    order = sorted(range(len(lines)), key=lambda i: lines[i]["bank_line_id"] not in strong)
    watch: dict[int, list[str]] = {}  # queued line -> the customers whose open items its decision reads

    def watched(i: int) -> list[str]:
        if i not in watch:
            line_id = lines[i]["bank_line_id"]
            found = {open_book.customer[n] for n, _ in prepared.refs.get(line_id, ()) if n in open_book.customer}
            watch[i] = sorted(found | {c for c, *_ in prepared.payers.get(line_id, ())})
        return watch[i]

    decisions: list[Decision | None] = [None] * len(lines)
    decided_at = [0] * len(lines)
    changed_at: dict[str, int] = {}   # customer -> the step at which one of its items last changed
    step = 0
    pending = order
    while pending:
        for i in pending:
            step += 1
            decision = _settle(matcher, lines[i], threshold)
            decisions[i], decided_at[i] = decision, step
            if decision.reason is None:
                for (number, _), _, kind in decision.rows:
                    if kind != "on_account":
                        changed_at[open_book.customer[number]] = step
        pending = [i for i in order if (decided := decisions[i]) is not None
                   and decided.reason not in (None, "non_receivable")
                   and any(changed_at.get(c, 0) > decided_at[i] for c in watched(i))]
    return _result(lines, decisions, open_book)


def _result(lines: list[dict[str, Any]], decisions: list[Decision | None], open_book: OpenBook) -> MatchResult:
    allocations: dict[str, list[Any]] = {name: [] for name in frames.ALLOCATIONS}
    exceptions: dict[str, list[Any]] = {name: [] for name in frames.EXCEPTIONS}
    skipped: dict[str, list[Any]] = {name: [] for name in frames.SKIPPED}
    for line, decision in zip(lines, decisions, strict=True):
        assert decision is not None
        line_id = line["bank_line_id"]
        if decision.reason == "non_receivable":  # interest, card settlements: not receivables, not the queue's business
            skipped["bank_line_id"].append(line_id)
            skipped["reason"].append(f"non_receivable:{decision.evidence.get('category', 'other')}")
            continue
        if decision.reason:
            for name, value in (("bank_line_id", line_id), ("reason", decision.reason),
                                ("suggestions", suggestions_text(decision.suggestions[:SUGGESTIONS])),
                                ("customer_id", decision.customer), ("evidence", evidence_text(decision.evidence))):
                exceptions[name].append(value)
            continue
        evidence = evidence_text({"rule": decision.rule, "runner_up": None, "margin": None, **decision.evidence})
        confidence = round(decision.confidence, 4)
        for (number, no), amount, kind in decision.rows:
            on_account = kind == "on_account"
            for name, value in (
                ("bank_line_id", line_id),
                ("kind", "installment" if (kind == "invoice" and no is not None) else kind),
                ("customer_id", decision.customer if on_account else open_book.customer[number]),
                ("invoice_number", None if on_account else number), ("installment_no", None if on_account else no),
                ("amount_minor", amount), ("currency", line["currency"]), ("rule", decision.rule),
                ("confidence", confidence), ("evidence", evidence),
            ):
                allocations[name].append(value)
    return MatchResult(
        allocations=pl.DataFrame(allocations, schema=frames.ALLOCATIONS, strict=True),
        exceptions=pl.DataFrame(exceptions, schema=frames.EXCEPTIONS, strict=True),
        skipped=pl.DataFrame(skipped, schema=frames.SKIPPED, strict=True),
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
        book.changed(number)
        book.open[number] += amount
        if no is not None:
            for entry in book.plan[number]:
                if entry[0] == no:
                    entry[1] += amount
