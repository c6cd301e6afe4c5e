"""reconcile: cash application and bank reconciliation in a daily batch.

Parse bank statements, match incoming payments to open invoices, post the
allocations to a ledger exactly once, and queue what needs a person.
"""

__version__ = "0.1.0"
