"""The LiteLLM-compatible management API (DRF): keys, teams, users, customers, models."""
