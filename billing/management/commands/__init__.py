"""`manage.py seed_prices`."""
