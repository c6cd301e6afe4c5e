"""The web workspace (`reconcile web`): the queue, balances, runs and the report in a browser."""

from reconcile.web.app import create_app

__all__ = ["create_app"]
