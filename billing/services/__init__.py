"""Billing services: the functions that write ledger rows, rollups, budgets and alerts."""
