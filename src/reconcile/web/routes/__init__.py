"""The web workspace's pages, one router per area, over service, queue and collector functions."""

from reconcile.web.routes import approvals, auth, balances, items, queue, runs

ROUTERS = (auth.router, queue.router, items.router, approvals.router, balances.router, runs.router)
