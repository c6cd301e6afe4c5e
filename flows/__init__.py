"""Prefect flows: thin orchestration over reconcile.service (installed as reconcile.flows)."""
