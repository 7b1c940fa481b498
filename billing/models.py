"""Models of the billing app: prices, ledger entries, spend rollups and budgets (none yet)."""
