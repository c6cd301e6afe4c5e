"""`reconcile exceptions ...`: the manual-review queue (views, claims, decisions, bulk, learning).

Each command parses its options, calls one function of queue / queue_actions
/ queue_bulk / learning and prints a table (or JSON with --json).
"""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    amount,
    config_for,
    console,
    echo,
    engine_for,
    handles_errors,
    print_json,
    print_table,
    safe,
)
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.queue import learning
from reconcile.queue import views as queue
from reconcile.queue.actions import Decision
from reconcile.queue.views import QueueFilter

app = typer.Typer(help="The manual-review queue.", no_args_is_help=True)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - some containers have no login name
        return "cli"


DEFAULT_ACTOR = _login_name()
ActorOption = Annotated[str, typer.Option("--actor", envvar="RECONCILE_ACTOR",
                                          help="Who acts (audit trail; default $RECONCILE_ACTOR or the login name)")]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept with the decision)")]
ReasonFilter = Annotated[str | None, typer.Option("--reason", help="Only this reason code")]
AssigneeFilter = Annotated[str | None, typer.Option("--assignee",
                                                    help="Only items assigned to this person ('none': unassigned)")]
AccountFilter = Annotated[str | None, typer.Option("--account", help="Only lines of this bank account")]
CurrencyFilter = Annotated[str | None, typer.Option("--currency", help="Only lines in this currency")]
MinAmount = Annotated[str | None, typer.Option("--min-amount", help="Only lines of at least this amount")]
MaxAmount = Annotated[str | None, typer.Option("--max-amount", help="Only lines of at most this amount")]
MinAge = Annotated[int | None, typer.Option("--min-age", help="Only lines booked at least this many days ago")]
SortOption = Annotated[str, typer.Option("--sort", help="oldest, largest or newest first")]
AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Date ages are counted to (YYYY-MM-DD), default today")]


def _now():  # type: ignore[no-untyped-def]
    from reconcile.services.daily import utcnow

    return utcnow()


def _as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReconcileError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _filters(status: str | None, reason: str | None, assignee: str | None, account: str | None,
             currency: str | None, min_amount: str | None, max_amount: str | None, min_age: int | None,
             pending: bool | None = None) -> QueueFilter:
    return QueueFilter(status=None if status == "all" else status, reason=reason, assignee=assignee, account=account,
                       currency=currency, min_amount=min_amount, max_amount=max_amount, min_age_days=min_age,
                       pending=pending)


LIST_COLUMNS = ["id", "reason", "booking_date", "age_days", "amount", "currency", "counterparty_name",
                "customer_id", "suggestions", "assignee", "claimed_by"]


@app.command("list")
@handles_errors
def list_(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    reason: ReasonFilter = None, assignee: AssigneeFilter = None, account: AccountFilter = None,
    currency: CurrencyFilter = None, min_amount: MinAmount = None, max_amount: MaxAmount = None,
    min_age: MinAge = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only write-offs awaiting approval")] = False,
    sort: SortOption = "oldest",
    limit: Annotated[int | None, typer.Option(help="At most this many lines")] = None,
    as_of: AsOfOption = None, as_json: JsonOption = False, db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """Queued bank lines (oldest first), with their age; '!' marks lines past the SLA."""
    filters = _filters(status, reason, assignee, account, currency, min_amount, max_amount, min_age, pending or None)
    frame = queue.list_items(engine_for(db_url), filters=filters, sort=sort, as_of=_as_of(as_of),
                             config=config_for(config_dir).queue, limit=limit)
    if as_json:
        print_json(frame.drop("amount_minor", "created_at").to_dicts())
        return
    rows = [
        (f"{r['id']}{'!' if r['over_sla'] else ''}{'*' if r['pending_approval'] else ''}",
         *[amount(r["amount_minor"], r["currency"]) if c == "amount" else r[c] for c in LIST_COLUMNS[1:]])
        for r in frame.iter_rows(named=True)
    ]
    print_table(f"{frame.height} exception(s)  (! past SLA, * write-off awaiting approval)", LIST_COLUMNS, rows,
                right=("amount", "age_days"))


@app.command()
@handles_errors
def summary(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    assignee: AssigneeFilter = None, account: AccountFilter = None, as_of: AsOfOption = None,
    as_json: JsonOption = False, db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """Counts and amounts per reason, lines past the SLA, the oldest line."""
    filters = _filters(status, None, assignee, account, None, None, None, None)
    counts = queue.summary(engine_for(db_url), filters=filters, as_of=_as_of(as_of),
                           config=config_for(config_dir).queue)
    if as_json:
        print_json(counts)
        return
    print_table("queue by reason", ["reason", "count", "amount", "past SLA", "awaiting approval", "oldest"], [
        (c["reason"], c["count"], ", ".join(f"{a} {ccy}" for ccy, a in c["amounts"].items()), c["over_sla"],
         c["pending_approval"], c["oldest"]) for c in counts
    ], right=("count", "past SLA", "awaiting approval"))


SHOWN = ("id", "reason", "status", "age_days", "source_ref", "account", "statement_file", "booking_date",
         "value_date", "amount", "currency", "counterparty_name", "counterparty_account", "remittance", "reference",
         "end_to_end_id", "bank_code", "instructed_amount", "instructed_currency", "charges", "customer_id",
         "customer_name", "assignee", "claimed_by", "proposed_by", "resolution", "category", "resolved_by",
         "approved_by", "resolution_batch")


def print_item(item: dict[str, Any]) -> None:
    for name in SHOWN:
        if item.get(name) is None and name not in ("counterparty_name", "remittance", "customer_id"):
            continue
        value = item[name] if item[name] is not None else ""
        flag = "  [red]past SLA[/red]" if name == "age_days" and item["over_sla"] else ""
        console.print(f"[bold]{name:>20}[/bold]  {safe(value)}{flag}", highlight=False)
    if item["proposal"]:
        console.print(f"[bold]{'proposal':>20}[/bold]  {safe(item['proposal'])}", highlight=False)
    if item["ranked_suggestions"]:
        print_table("suggestions, best first", ["rank", "items", "customer", "open", "difference", "due", "reference",
                                                "name score", "payer account"], [
            (s["rank"], " + ".join(s["items"]), s["customer_id"], amount(s["open"], item["currency"]),
             amount(s["difference"], item["currency"]), s["due_date"],
             s["evidence"]["reference"] or "", s["evidence"]["name_score"] or "",
             "yes" if s["evidence"]["payer_account"] else "")
            for s in item["ranked_suggestions"]
        ], right=("open", "difference"))
    elif item["evidence"]:
        console.print(f"[bold]{'evidence':>20}[/bold]  {safe(item['evidence'])}", highlight=False)
    if item["open_items"]:
        rows = []
        for o in item["open_items"]:
            rows.append((o["invoice_number"], "", o["due_date"], amount(o["open"], o["currency"]), o["currency"]))
            rows += [(f"{o['invoice_number']}#{i['installment_no']}", "installment", i["due_date"],
                      amount(i["open"], o["currency"]), "")
                     for i in o["installments"]]
        print_table(f"open items of {item['customer_id']}", ["item", "kind", "due_date", "open", "currency"], rows,
                    right=("open",))
    if item.get("advice"):
        advice = item["advice"]
        print_table(f"remittance advice {advice['advice_ref']} ({advice['format']}), linked by {advice['linked_by']}",
                    ["invoice", "paid", "discount", "adjustment", "reasons"],
                    [(x["invoice_number"] or "", amount(x["paid"], advice["currency"]),
                      amount(x["discount"], advice["currency"]) if x["discount"] else "",
                      amount(x["adjustment"], advice["currency"]) if x["adjustment"] else "", x["reasons"] or "")
                     for x in advice["lines"]], right=("paid", "discount", "adjustment"))
    if item.get("why"):
        console.print(f"[bold]{'why':>20}[/bold]  {safe(item['why'])}", highlight=False)
    for note in item["notes"]:
        console.print(f"[bold]{'note':>20}[/bold]  {safe(note['at'])} {safe(note['author'])}: {safe(note['text'])}",
                      highlight=False)


@app.command()
@handles_errors
def show(
    key: Annotated[str, typer.Argument(help="Exception id or the bank line's source_ref")],
    as_of: AsOfOption = None, as_json: JsonOption = False, db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """One queued line: why it is here, the payer, ranked suggestions and the customer's open items. A line
    that was never queued (posted automatically) is explained instead: the rule, its signals, the runner-up."""
    engine = engine_for(db_url)
    try:
        item = queue.get_item(engine, key, as_of=_as_of(as_of), config=config_for(config_dir).queue)
    except NotFoundError:
        from reconcile.cli.explain_cmd import print_explanation
        from reconcile.services.explain import explain_line

        try:  # a line that never was in the queue: why it posted, or was skipped
            found = explain_line(engine, key.strip())
        except NotFoundError:
            raise NotFoundError(f"no exception item and no bank line {key.strip()!r}") from None
        if as_json:
            print_json(found)
            return
        print_explanation(found)
        return
    if as_json:
        print_json(item)
        return
    print_item(item)


@app.command()
@handles_errors
def claim(
    key: Annotated[str | None, typer.Argument(help="Exception id; without it, the next free item")] = None,
    reason: ReasonFilter = None, account: AccountFilter = None, currency: CurrencyFilter = None,
    min_amount: MinAmount = None, max_amount: MaxAmount = None, min_age: MinAge = None,
    sort: SortOption = "oldest", actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False,
    db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """Claim an item (the next free one: oldest or largest first), so no colleague works on it too."""
    from reconcile.queue.actions import claim as claim_one
    from reconcile.queue.actions import claim_next

    engine, queue_config = engine_for(db_url), config_for(config_dir).queue
    if key:
        found: int | None = claim_one(engine, key, actor=actor, now=_now(), config=queue_config)["id"]
    else:
        filters = _filters("open", reason, None, account, currency, min_amount, max_amount, min_age)
        found = claim_next(engine, actor=actor, now=_now(), filters=filters, sort=sort, config=queue_config)
    if found is None:
        if as_json:
            print_json(None)
        else:
            console.print("nothing to claim: no free item matches")
        return
    item = queue.get_item(engine, found, config=queue_config)
    if as_json:
        print_json(item)
        return
    echo(f"claimed exception {found} for {actor}")
    print_item(item)


@app.command()
@handles_errors
def release(
    key: Annotated[str, typer.Argument(help="Exception id")],
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Give back an item you claimed."""
    from reconcile.queue.actions import release as release_one

    release_one(engine_for(db_url), key, actor=actor, now=_now())
    said({"id": key, "released": True}, f"exception {key} released", as_json)


def said(result: Any, message: str, as_json: bool) -> None:
    """A one-line outcome, or its data as JSON."""
    if as_json:
        print_json(result)
    else:
        echo(message)


def _parts(invoices: list[str]) -> tuple[tuple[str, str | None], ...]:
    parts = []
    for text in invoices:
        name, sep, amount = text.partition("=")
        parts.append((name.strip(), amount.strip() if sep else None))
    return tuple(parts)


def print_done(done: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(done)
        return
    if done["status"] == "pending_approval":
        echo(f"exception {done['id']}: write-off of {done['write_off']} on {done['invoice']} "
                      "is above the approval limit and waits for a second person (`reconcile exceptions approve`)")
        return
    title = (f"exception {done['id']} resolved: {done['resolution']}"
             + (f" ({done['category']})" if done.get("category") else ""))
    if done["allocations"]:
        print_table(title, ["kind", "invoice_number", "installment_no", "customer_id", "amount"],
                    [(r["kind"], r["invoice_number"], r["installment_no"], r["customer_id"],
                      amount(r["amount"], r.get("currency")))
                     for r in done["allocations"]], right=("amount",))
    else:
        echo(title)
    for row in done.get("learned") or []:
        echo(f"learned: {row['kind']} {row['value']!r} pays for customer {row['customer_id']}")


@app.command()
@handles_errors
def resolve(
    key: Annotated[str, typer.Argument(help="Exception id or the bank line's source_ref")],
    accept: Annotated[int | None, typer.Option("--accept", help="Accept suggestion N (1 = best; see `show`)")] = None,
    invoice: Annotated[list[str], typer.Option("--invoice", help="INV or INV=AMOUNT (INV#n for installment n); repeat. "
                                               "Without amounts: in order, each up to its open amount")] = [],  # noqa: B006
    on_account: Annotated[str | None, typer.Option("--on-account",
                                                   help="Customer to keep the payment (or the rest) for")] = None,
    write_off: Annotated[str | None, typer.Option("--write-off", help="The payment is for this invoice; "
                                                  "write off the difference")] = None,
    code: Annotated[str | None, typer.Option("--code", help="Write-off reason code")] = None,
    not_receivable: Annotated[str | None, typer.Option("--not-receivable",
                                                       help="interest, refund, transfer, fee or other")] = None,
    refund: Annotated[bool, typer.Option("--refund", help="The money goes back to the payer")] = False,
    unapply: Annotated[bool, typer.Option("--unapply", help="closed_elsewhere: take the posting back; the money "
                                          "returns to the queue")] = False,
    confirm: Annotated[bool, typer.Option("--confirm", help="closed_elsewhere: the posting stands as it is")] = False,
    rate: Annotated[str | None, typer.Option("--rate", help="Invoices in another currency than the payment: units of "
                                             "the invoices' currency for one unit of the payment's (not needed when "
                                             "the bank stated the amount in their currency)")] = None,
    no_learn: Annotated[bool, typer.Option("--no-learn", help="Do not teach the matcher this payer")] = False,
    actor: ActorOption = DEFAULT_ACTOR, note: NoteOption = None, as_json: JsonOption = False,
    db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """Decide a queued line: posted through the ledger at once, or (a write-off above the limit) proposed for approval.
    """
    from reconcile.queue.actions import resolve as resolve_one

    modes = [m for m, on in (("--accept", accept is not None), ("--invoice", bool(invoice)),
                             ("--write-off", write_off is not None), ("--not-receivable", not_receivable is not None),
                             ("--refund", refund), ("--unapply", unapply), ("--confirm", confirm)) if on]
    if len(modes) > 1:
        raise ReconcileError(f"choose one decision, not {' and '.join(modes)}")
    learn = not no_learn
    if accept is not None:
        decision = Decision("accept", choice=accept, note=note, learn=learn, rate=rate)
    elif invoice:
        decision = Decision("allocate", parts=_parts(invoice), customer=on_account,
                            rest_on_account=on_account is not None, note=note, learn=learn, rate=rate)
    elif write_off:
        decision = Decision("write_off", invoice=write_off, code=code, note=note, learn=learn, rate=rate)
    elif not_receivable:
        decision = Decision("not_receivable", code=not_receivable, note=note, learn=False)
    elif refund:
        decision = Decision("refund", note=note, learn=False)
    elif unapply or confirm:
        decision = Decision("unapply" if unapply else "confirm", note=note, learn=False)
    elif on_account:
        decision = Decision("on_account", customer=on_account, note=note, learn=learn)
    else:
        raise ReconcileError("say what to do: --accept N, --invoice ..., --on-account CUSTOMER, "
                             "--write-off INV --code X, --not-receivable CATEGORY or --refund")
    done = resolve_one(engine_for(db_url), key, decision, actor=actor, now=_now(), config=config_for(config_dir).queue)
    print_done(done, as_json)


@app.command()
@handles_errors
def approve(
    key: Annotated[str, typer.Argument(help="Exception id")],
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Approve a colleague's write-off above the limit: it is posted now.

    The approver signs with their own web workspace password ($RECONCILE_PASSWORD, else asked for);
    [web] cli_approvals = false refuses approvals here altogether (approve in the web workspace).
    """
    import os

    from reconcile.queue.actions import approve as approve_one
    from reconcile.web.users import authenticate

    config = config_for(config_dir)
    if not config.web.cli_approvals:
        raise ReconcileError("approvals from the command line are switched off ([web] cli_approvals = false): "
                             "approve in the web workspace")
    engine = engine_for(db_url)
    password = os.environ.get("RECONCILE_PASSWORD")
    if password is None:
        password = typer.prompt(f"password of {actor}", hide_input=True, default="", show_default=False)
    user = authenticate(engine, actor, password)
    if user is None:
        raise ReconcileError(f"{actor}: unknown user or wrong password (an approval needs the approver's own "
                             "password: $RECONCILE_PASSWORD or the prompt)")
    if not user.may("approve"):
        raise ReconcileError(f"{actor} is a {user.role}: only an approver or admin may approve write-offs")
    print_done(approve_one(engine, key, actor=user.name, now=_now(), config=config.queue), as_json)


@app.command()
@handles_errors
def withdraw(
    key: Annotated[str, typer.Argument(help="Exception id")],
    actor: ActorOption = DEFAULT_ACTOR, note: NoteOption = None, as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Withdraw (or reject) a write-off awaiting approval; the item stays open."""
    from reconcile.queue.actions import withdraw as withdraw_one

    withdraw_one(engine_for(db_url), key, actor=actor, now=_now(), reason=note)
    said({"id": key, "withdrawn": True}, f"exception {key}: write-off proposal withdrawn", as_json)


@app.command()
@handles_errors
def reopen(
    key: Annotated[str, typer.Argument(help="Exception id")],
    reason: Annotated[str, typer.Option("--reason", help="Why the decision is undone")],
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Undo a resolution: its posting is reversed (or the skipped line queued again) and the item is open."""
    from reconcile.queue.actions import reopen as reopen_one

    done = reopen_one(engine_for(db_url), key, actor=actor, now=_now(), reason=reason)
    if as_json:
        print_json(done)
        return
    echo(f"exception {done['id']} ({done['was']}) reopened as exception {done['reopened_as']}")


@app.command()
@handles_errors
def assign(
    key: Annotated[str, typer.Argument(help="Exception id")],
    person: Annotated[str | None, typer.Argument(help="Who should decide it (omit to unassign)")] = None,
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Assign an open item to a person."""
    from reconcile.queue.actions import assign as assign_one

    done = assign_one(engine_for(db_url), key, person, actor=actor, now=_now())
    said(done, f"exception {done['id']} assigned to {done['assignee'] or 'nobody'}", as_json)


@app.command()
@handles_errors
def note(
    key: Annotated[str, typer.Argument(help="Exception id")],
    text: Annotated[str, typer.Argument(help="The note")],
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Add a note to an item."""
    from reconcile.queue.actions import add_note

    done = add_note(engine_for(db_url), key, text, actor=actor, now=_now())
    said(done, f"note added to exception {done['id']}", as_json)


@app.command()
@handles_errors
def bulk(
    file: Annotated[Path, typer.Argument(help="CSV of decisions: exception,action[,invoices,customer,choice,code,"
                                         "rest_on_account,note,learn]")],
    check: Annotated[bool, typer.Option("--check", help="Validate only; change nothing")] = False,
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Resolve many lines from a CSV: every row is checked first; one bad row and nothing is applied."""
    from reconcile.queue.bulk import bulk_resolve

    done = bulk_resolve(engine_for(db_url), file, actor=actor, now=_now(), config=config_for(config_dir).queue,
                        dry_run=check)
    if as_json:
        print_json({"batch": done.batch, "applied": done.applied, "rows": done.rows})
        return
    print_table(("checked, nothing applied" if check else f"batch {done.batch}: {done.applied} resolved"),
                ["line", "id", "decision", "allocations"],
                [(r["line"], r["id"], r.get("decision") or r.get("resolution"),
                  ", ".join(f"{a['kind']} {a['invoice_number'] or ''} {a['amount']}".replace("  ", " ")
                            for a in r["allocations"])) for r in done.rows])
    if not check:
        echo(f"undo with: reconcile exceptions undo {done.batch}")


@app.command()
@handles_errors
def undo(
    batch: Annotated[str, typer.Argument(help="Batch id printed by `bulk`")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why")] = None,
    actor: ActorOption = DEFAULT_ACTOR, as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Undo a whole batch: every posting reversed, every item open again."""
    from reconcile.queue.bulk import undo_batch

    done = undo_batch(engine_for(db_url), batch, actor=actor, now=_now(), reason=reason)
    if as_json:
        print_json(done)
        return
    echo(f"batch {batch} undone: {len(done['reopened'])} item(s) open again")


@app.command()
@handles_errors
def forget(
    alias: Annotated[str | None, typer.Option("--alias", help="A learned payer name")] = None,
    account: Annotated[str | None, typer.Option("--account", help="A learned payer account")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only for this customer")] = None,
    actor: ActorOption = DEFAULT_ACTOR, note: NoteOption = None, as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Stop using a learned payer name or account (kept, deactivated, in the history)."""
    rows = learning.forget(engine_for(db_url), alias=alias, account=account, customer=customer, actor=actor,
                           now=_now(), reason=note)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        echo(f"forgot {row['kind']} {row['value']!r} of customer {row['customer_id']}")


@app.command()
@handles_errors
def learned(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also forgotten ones")] = False,
    as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Payer names and accounts learned from decisions."""
    frame = learning.list_learned(engine_for(db_url), customer=customer, include_inactive=all_)
    if as_json:
        print_json(frame.to_dicts())
        return
    print_table(f"{frame.height} learned", list(frame.columns), frame.iter_rows())
