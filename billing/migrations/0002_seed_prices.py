"""Seed the bundled price table into Price rows (``manage.py seed_prices`` refreshes them later)."""

from django.db import migrations


def seed(apps, schema_editor):
    # The service with the historical model: it writes only fields of 0001's Price. If it ever needs
    # a later field, freeze a copy of it here instead.
    from billing.services.prices import prices_seed_rows

    prices_seed_rows(price_model=apps.get_model("billing", "Price"))


def unseed(apps, schema_editor):
    apps.get_model("billing", "Price").objects.filter(source="bundled", deployment_id="").delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
