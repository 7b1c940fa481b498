"""The billing Django app: prices, the request ledger, spend counters, budgets and rollups."""
