"""Seeding the bundled price table into Price rows: complete, idempotent, and never over an admin's price."""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from importlib import resources

import orjson
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from billing import pricing
from billing.models import Price
from billing.pricing import price_for
from billing.services.prices import prices_seed
from providers import price_table

pytestmark = pytest.mark.django_db

SEEDED_MODES = {"chat", "completion", "embedding", "image_generation"}


def raw_table() -> dict[str, dict]:
    """Return the bundled table as its JSON file has it, read independently of the code under test."""
    raw = orjson.loads(resources.files("providers").joinpath("data", "model_prices.json").read_bytes())
    raw.pop("_meta")
    return raw


def row_priceable(key: str, entry: dict) -> bool:
    """Return whether a row's six prices can price this entry the way the table does."""
    if entry.get("mode") not in SEEDED_MODES:
        return False
    if entry["mode"] != "image_generation":
        return any("cost" in name for name in entry)
    if "output_cost_per_image_token" in entry:
        return False  # gpt-image: billed by image tokens
    if "output_cost_per_image" in entry or "input_cost_per_image" in entry:
        return True
    if "input_cost_per_pixel" in entry or "output_cost_per_pixel" in entry:
        return re.search(r"\d+-x-\d+/", key) is not None  # a size to price one image at
    return "input_cost_per_token" in entry or "output_cost_per_token" in entry


@pytest.fixture(autouse=True)
def fresh_price_book():
    pricing.book.clear()
    yield
    pricing.book.clear()


@pytest.fixture
def empty_prices():
    # The data migration seeded the test database; start these tests from no rows at all.
    Price.objects.all().delete()


def test_it_seeds_a_row_for_every_bundled_model_a_row_can_price(empty_prices):
    table = raw_table()
    expected = {key for key, entry in table.items() if row_priceable(key, entry)}

    result = prices_seed()

    seeded = set(Price.objects.values_list("model", flat=True))
    assert seeded == expected
    assert result.created == len(expected) == Price.objects.count()
    assert result.updated == result.unchanged == 0
    assert set(Price.objects.values_list("source", flat=True)) == {"bundled"}
    # Only image models billed by image tokens or by pixel with no size are left to the table.
    left_out = {key for key, entry in table.items() if entry["mode"] in SEEDED_MODES} - seeded
    assert left_out
    assert {table[key]["mode"] for key in left_out} == {"image_generation"}
    assert len(left_out) < 60


def test_a_seeded_row_holds_the_table_prices_exactly(empty_prices):
    prices_seed()

    mini = Price.objects.get(model="gpt-4o-mini")
    assert (mini.provider, mini.mode, mini.deployment_id) == ("openai", "chat", "")
    assert mini.input_cost_per_token == Decimal("0.00000015")
    assert mini.output_cost_per_token == Decimal("0.0000006")
    assert mini.cache_read_input_token_cost == Decimal("0.000000075")
    assert mini.cache_creation_input_token_cost is None
    assert mini.output_cost_per_reasoning_token is None
    assert mini.effective_from is mini.effective_to is None
    sonnet = Price.objects.get(model="claude-sonnet-4-5")
    assert sonnet.cache_creation_input_token_cost == Decimal("0.00000375")
    embedding = Price.objects.get(model="text-embedding-3-small")
    assert (embedding.mode, embedding.input_cost_per_token) == ("embedding", Decimal("0.00000002"))
    # Per pixel at the size in its key: 1024 x 1024 x $0.0000000839233.
    dalle = Price.objects.get(model="azure/hd/1024-x-1024/dall-e-3")
    assert dalle.output_cost_per_image == Decimal("0.0879999582208")
    # gpt-image-1.5 prices an image of a size as input_cost_per_image.
    assert Price.objects.get(model="1024-x-1024/gpt-image-1.5").output_cost_per_image == Decimal("0.009")
    assert not Price.objects.filter(model="gpt-image-1").exists()


def test_seeding_again_changes_nothing_in_a_few_queries(empty_prices, django_assert_max_num_queries):
    prices_seed()
    before = dict(Price.objects.values_list("id", "updated_at"))

    with django_assert_max_num_queries(6):
        result = prices_seed()

    assert (result.created, result.updated) == (0, 0)
    assert result.unchanged == len(before)
    assert dict(Price.objects.values_list("id", "updated_at")) == before


def test_it_never_touches_an_admin_price(empty_prices):
    prices_seed()
    bundled = Price.objects.get(model="gpt-4o-mini")
    Price.objects.create(
        model="gpt-4o-mini", provider="openai", input_cost_per_token=Decimal("0.0000001"), source="admin"
    )
    # An admin edited a once-bundled row: it is theirs now.
    edited = Price.objects.get(model="gpt-4o")
    Price.objects.filter(pk=edited.pk).update(source="admin", output_cost_per_token=Decimal("0.000009"))
    snapshot = {
        row.pk: (row.input_cost_per_token, row.output_cost_per_token, row.updated_at)
        for row in Price.objects.exclude(source="bundled")
    }

    result = prices_seed()

    assert {
        row.pk: (row.input_cost_per_token, row.output_cost_per_token, row.updated_at)
        for row in Price.objects.exclude(source="bundled")
    } == snapshot
    assert Price.objects.get(pk=bundled.pk).input_cost_per_token == Decimal("0.00000015")
    # The edited row's model gets its bundled row back beside it.
    assert result.created == 1
    assert Price.objects.filter(model="gpt-4o", source="bundled").count() == 1


def test_a_changed_bundled_price_updates_its_row(
    empty_prices, monkeypatch, django_capture_on_commit_callbacks
):
    prices_seed()
    at = timezone.now()
    assert price_for("gpt-4o-mini", "openai", "", at).prices["input_cost_per_token"] == Decimal("0.00000015")
    table = dict(price_table._table())
    table["gpt-4o-mini"] = {**table["gpt-4o-mini"], "input_cost_per_token": Decimal("0.0000002")}
    del table["gpt-4o-mini"]["cache_read_input_token_cost"]
    table["gpt-9-preview"] = {
        "provider": "openai",
        "mode": "chat",
        "input_cost_per_token": Decimal("0.00001"),
        "output_cost_per_token": Decimal("0.00003"),
    }
    monkeypatch.setattr(price_table, "_table", lambda: table)
    others = dict(Price.objects.exclude(model="gpt-4o-mini").values_list("id", "updated_at"))

    with django_capture_on_commit_callbacks(execute=True):
        result = prices_seed()

    assert (result.created, result.updated) == (1, 1)
    mini = Price.objects.get(model="gpt-4o-mini")
    assert mini.input_cost_per_token == Decimal("0.0000002")
    assert mini.cache_read_input_token_cost is None
    assert Price.objects.get(model="gpt-9-preview").output_cost_per_token == Decimal("0.00003")
    assert (
        dict(
            Price.objects.exclude(model__in=["gpt-4o-mini", "gpt-9-preview"]).values_list("id", "updated_at")
        )
        == others
    )
    # The price cache was told.
    assert price_for("gpt-4o-mini", "openai", "", at).snapshot["input_cost_per_token"] == "0.0000002"


def test_the_command_seeds_and_reports(empty_prices, capsys):
    call_command("seed_prices")
    call_command("seed_prices")

    count = Price.objects.count()
    out = capsys.readouterr().out
    assert f"Bundled prices: {count} created, 0 updated, 0 unchanged." in out
    assert f"Bundled prices: 0 created, 0 updated, {count} unchanged." in out


def test_the_data_migration_seeds_with_the_historical_model(empty_prices):
    migration = importlib.import_module("billing.migrations.0002_seed_prices")
    state = MigrationExecutor(connection).loader.project_state(("billing", "0002_seed_prices"))
    admin_row = Price.objects.create(model="house-model", input_cost_per_token=Decimal("0.000001"))

    migration.seed(state.apps, None)
    seeded = Price.objects.filter(source="bundled").count()
    migration.unseed(state.apps, None)

    assert seeded == sum(1 for key, entry in raw_table().items() if row_priceable(key, entry))
    assert list(Price.objects.all()) == [admin_row]
