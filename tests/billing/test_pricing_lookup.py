"""Which price a request is charged at: the look-up order, effective dates, and the in-process cache."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connections

from billing import pricing
from billing.models import Price
from billing.pricing import PRICE_GENERATION_CACHE_KEY, PriceBook, aprice_for, price_for, quote_from_index
from llm_gateway.lookups import config_changed
from llm_gateway.services.deployments import deployment_update
from tests.llm_gateway.factories import deployment_make

pytestmark = pytest.mark.django_db

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MINI_INPUT = Decimal("0.00000015")  # gpt-4o-mini in the bundled table


def at(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def price_make(model: str, *, input_price: str, provider: str = "", **fields) -> Price:
    """Create an admin's price; ``input_price`` tells the rows apart."""
    return Price.objects.create(
        model=model, provider=provider, input_cost_per_token=Decimal(input_price), source="admin", **fields
    )


def charged_input(
    model: str, provider: str = "openai", deployment_id: str = "", when: datetime = AT
) -> Decimal:
    return price_for(model, provider, deployment_id, when).prices["input_cost_per_token"]


@pytest.fixture(autouse=True)
def fresh_price_book():
    pricing.book.clear()
    yield
    pricing.book.clear()


@pytest.fixture
def seeded(django_capture_on_commit_callbacks):
    """The bundled rows, as the data migration left them (a transactional test may have flushed them)."""
    from billing.services.prices import prices_seed

    with django_capture_on_commit_callbacks(execute=True):
        prices_seed()


def test_a_bundled_row_prices_a_known_model(seeded):
    quote = price_for("gpt-4o-mini", "openai", "dep-1", AT)

    row = Price.objects.get(model="gpt-4o-mini", source="bundled")
    assert quote.prices == {
        "input_cost_per_token": MINI_INPUT,
        "output_cost_per_token": Decimal("0.0000006"),
        "cache_read_input_token_cost": Decimal("0.000000075"),
    }
    assert quote.snapshot == {
        "input_cost_per_token": "0.00000015",
        "output_cost_per_token": "0.0000006",
        "cache_read_input_token_cost": "0.000000075",
        "source": "bundled",
        "price_id": str(row.pk),
        "model": "gpt-4o-mini",
    }


def test_model_names_match_as_the_price_table_names_them(seeded):
    # "gpt-4o" at azure is the table's "azure/gpt-4o"; "openai/gpt-4o-mini" is "gpt-4o-mini".
    assert price_for("gpt-4o", "azure", "", AT).snapshot["model"] == "azure/gpt-4o"
    assert price_for("openai/gpt-4o-mini", "openai", "", AT).snapshot["model"] == "gpt-4o-mini"
    assert price_for("azure/gpt-4o", "azure", "", AT).snapshot["model"] == "azure/gpt-4o"


def test_a_deployment_price_wins_over_every_other(seeded):
    price_make("gpt-4o-mini", provider="openai", input_price="0.000002")
    price_make("gpt-4o-mini", input_price="0.000003")
    override = price_make("gpt-4o-mini", provider="openai", input_price="0.000001", deployment_id="dep-1")
    deployment_make(model_id="dep-1", model="gpt-4o-mini", model_info={"input_cost_per_token": 0.000009})

    quote = price_for("gpt-4o-mini", "openai", "dep-1", AT)

    assert quote.prices["input_cost_per_token"] == Decimal("0.000001")
    assert quote.snapshot["deployment_id"] == "dep-1"
    assert quote.snapshot["price_id"] == str(override.pk)
    # Another deployment of the model does not get it.
    assert charged_input("gpt-4o-mini", deployment_id="dep-2") == Decimal("0.000002")


def test_a_provider_and_model_row_wins_over_a_row_for_any_provider(seeded):
    price_make("gpt-4o-mini", input_price="0.000003")
    price_make("gpt-4o-mini", provider="openai", input_price="0.000002")

    assert charged_input("gpt-4o-mini") == Decimal("0.000002")
    assert charged_input("gpt-4o-mini", provider="azure") == Decimal("0.000003")


def test_a_model_row_serves_any_provider_its_blank_provider_row_first():
    price_make("house-model", provider="groq", input_price="0.000005")
    assert charged_input("house-model", provider="together_ai") == Decimal("0.000005")

    pricing.book.clear()
    price_make("house-model", input_price="0.000004")
    assert charged_input("house-model", provider="together_ai") == Decimal("0.000004")
    assert charged_input("house-model", provider="groq") == Decimal("0.000005")


def test_an_admin_row_wins_over_the_bundled_row_of_its_model(seeded):
    admin_row = price_make("gpt-4o-mini", provider="openai", input_price="0.0000001")

    quote = price_for("gpt-4o-mini", "openai", "", AT)

    assert quote.prices["input_cost_per_token"] == Decimal("0.0000001")
    assert quote.snapshot["source"] == "admin"
    assert quote.snapshot["price_id"] == str(admin_row.pk)


def test_a_deployments_model_info_prices_an_unknown_model():
    deployment_make(
        model_id="dep-1",
        model="my-finetune",
        model_info={"input_cost_per_token": 0.0000012, "output_cost_per_token": "0.0000048"},
    )

    quote = price_for("my-finetune", "openai", "dep-1", AT)

    assert quote.prices == {
        "input_cost_per_token": Decimal("0.0000012"),
        "output_cost_per_token": Decimal("0.0000048"),
    }
    assert quote.snapshot["source"] == "model_info"
    assert quote.snapshot["deployment_id"] == "dep-1"


def test_a_deployments_own_price_wins_over_the_list_price_not_over_an_admin(seeded):
    # LiteLLM config prices (model_info or litellm_params) are this deployment's negotiated price.
    deployment_make(model_id="dep-1", model="gpt-4o-mini", extra_params={"output_cost_per_token": 0.000001})

    quote = price_for("gpt-4o-mini", "openai", "dep-1", AT)
    # Laid over the model's list price: the input and cache prices stay the table's.
    assert quote.prices == {
        "input_cost_per_token": MINI_INPUT,
        "output_cost_per_token": Decimal("0.000001"),
        "cache_read_input_token_cost": Decimal("0.000000075"),
    }
    assert quote.snapshot["source"] == "model_info"

    pricing.book.clear()
    price_make("gpt-4o-mini", provider="openai", input_price="0.0000001")
    assert charged_input("gpt-4o-mini", deployment_id="dep-1") == Decimal("0.0000001")


def test_a_base_model_prices_a_deployment_under_another_name(seeded):
    deployment_make(
        model_id="dep-1", provider="azure", model="prod-gpt4o", model_info={"base_model": "azure/gpt-4o"}
    )
    deployment_make(
        model_id="dep-2",
        provider="azure",
        model="cheap-gpt4o",
        model_info={"base_model": "azure/gpt-4o", "output_cost_per_token": "0.000008"},
    )

    quote = price_for("prod-gpt4o", "azure", "dep-1", AT)
    assert quote.prices["input_cost_per_token"] == Decimal("0.0000025")
    assert quote.snapshot["model"] == "azure/gpt-4o"
    assert quote.snapshot["base_model"] == "azure/gpt-4o"

    custom = price_for("cheap-gpt4o", "azure", "dep-2", AT)
    assert custom.prices["input_cost_per_token"] == Decimal("0.0000025")
    assert custom.prices["output_cost_per_token"] == Decimal("0.000008")
    assert custom.snapshot["source"] == "model_info"


def test_the_bundled_table_prices_a_model_no_row_can():
    Price.objects.all().delete()

    assert charged_input("gpt-4o-mini") == MINI_INPUT
    image = price_for("gpt-image-1", "openai", "", AT)
    assert image.snapshot["source"] == "price_table"
    assert image.prices["output_cost_per_image_token"] == Decimal("0.00004")


def test_an_unknown_model_is_free_marked_unpriced_and_warned_about_once(caplog):
    caplog.set_level(logging.WARNING, logger="billing.pricing")
    model = f"no-such-model-{uuid.uuid4().hex}"  # warned about once per process: a name never seen

    first = price_for(model, "openai", "dep-1", AT)
    second = price_for(model, "openai", "dep-1", AT)

    assert first.snapshot["source"] == "unpriced"
    assert first.prices["input_cost_per_token"] == first.prices["output_cost_per_token"] == 0
    assert second is first
    warnings = [record for record in caplog.records if model in record.getMessage()]
    assert len(warnings) == 1


def test_the_row_effective_at_the_time_wins():
    price_make("house-model", input_price="0.000001", effective_from=at(2020), effective_to=at(2024))
    price_make("house-model", input_price="0.000002", effective_from=at(2024))
    price_make("house-model", input_price="0.000003", effective_from=at(2030))

    assert charged_input("house-model", when=at(2022)) == Decimal("0.000001")
    assert charged_input("house-model", when=at(2024)) == Decimal("0.000002")  # effective_to is exclusive
    assert charged_input("house-model", when=at(2026)) == Decimal("0.000002")
    assert charged_input("house-model", when=at(2031)) == Decimal("0.000003")
    assert price_for("house-model", "openai", "", at(2019)).snapshot["source"] == "unpriced"


def test_a_future_deployment_price_does_not_apply_yet(seeded):
    price_make("gpt-4o-mini", input_price="0.000001", deployment_id="dep-1", effective_from=at(2027))

    assert charged_input("gpt-4o-mini", deployment_id="dep-1", when=at(2026)) == MINI_INPUT
    assert charged_input("gpt-4o-mini", deployment_id="dep-1", when=at(2027)) == Decimal("0.000001")


def test_an_open_ended_row_gives_way_to_a_later_start():
    price_make("house-model", input_price="0.000001")
    price_make("house-model", input_price="0.000002", effective_from=at(2026, 3))

    assert charged_input("house-model", when=at(2026, 2)) == Decimal("0.000001")
    assert charged_input("house-model", when=at(2026, 4)) == Decimal("0.000002")


def test_no_query_after_warm_up(seeded, django_assert_num_queries):
    deployment_make(model_id="dep-1", model="my-finetune", model_info={"input_cost_per_token": 0.000001})
    price_for("gpt-4o-mini", "openai", "", AT)

    with django_assert_num_queries(0):
        for _ in range(3):
            price_for("gpt-4o-mini", "openai", "dep-9", AT)
            price_for("gpt-4o", "azure", "", AT)
            price_for("my-finetune", "openai", "dep-1", AT)
            price_for("gpt-image-1", "openai", "", AT)
            price_for("no-such-model-xyz", "openai", "", AT)


def test_saving_a_price_reprices_at_once(seeded, django_capture_on_commit_callbacks):
    assert charged_input("gpt-4o-mini") == MINI_INPUT

    with django_capture_on_commit_callbacks(execute=True):
        row = price_make("gpt-4o-mini", provider="openai", input_price="0.0000001")
    assert charged_input("gpt-4o-mini") == Decimal("0.0000001")

    with django_capture_on_commit_callbacks(execute=True):
        row.input_cost_per_token = Decimal("0.0000002")
        row.save()
    assert charged_input("gpt-4o-mini") == Decimal("0.0000002")

    with django_capture_on_commit_callbacks(execute=True):
        row.delete()
    assert charged_input("gpt-4o-mini") == MINI_INPUT


def test_another_instance_reprices_within_the_refresh_interval(seeded, django_capture_on_commit_callbacks):
    clock = [1000.0]
    other_instance = PriceBook(clock=lambda: clock[0])
    quote = quote_from_index(other_instance.index(), "gpt-4o-mini", "openai", "", AT)
    assert quote.prices["input_cost_per_token"] == MINI_INPUT
    generation = cache.get(PRICE_GENERATION_CACHE_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        price_make("gpt-4o-mini", provider="openai", input_price="0.0000001")

    assert cache.get(PRICE_GENERATION_CACHE_KEY) != generation
    # Until its next check it serves what it has, without asking the cache or the database.
    clock[0] += settings.GATEWAY["CONFIG_REFRESH_SECONDS"] / 2
    quote = quote_from_index(other_instance.index(), "gpt-4o-mini", "openai", "", AT)
    assert quote.prices["input_cost_per_token"] == MINI_INPUT
    clock[0] += settings.GATEWAY["CONFIG_REFRESH_SECONDS"]
    quote = quote_from_index(other_instance.index(), "gpt-4o-mini", "openai", "", AT)
    assert quote.prices["input_cost_per_token"] == Decimal("0.0000001")


def test_a_key_or_team_change_does_not_reload_the_prices(django_assert_num_queries):
    clock = [1000.0]
    other_instance = PriceBook(clock=lambda: clock[0])
    other_instance.index()

    config_changed()  # what a key, team or end-user write does
    clock[0] += 2 * settings.GATEWAY["CONFIG_REFRESH_SECONDS"]

    with django_assert_num_queries(0):
        other_instance.index()


def test_a_deployment_price_change_reprices(django_capture_on_commit_callbacks):
    deployment = deployment_make(
        model_id="dep-1", model="my-finetune", model_info={"input_cost_per_token": 0.000001}
    )
    assert charged_input("my-finetune", deployment_id="dep-1") == Decimal("0.000001")

    with django_capture_on_commit_callbacks(execute=True):
        deployment_update(deployment=deployment, model_info={"input_cost_per_token": 0.000002})

    assert charged_input("my-finetune", deployment_id="dep-1") == Decimal("0.000002")


def test_a_malformed_deployment_price_is_ignored_not_fatal(caplog):
    deployment_make(model_id="dep-1", model="my-finetune", model_info={"input_cost_per_token": "cheap"})

    assert price_for("my-finetune", "openai", "dep-1", AT).snapshot["source"] == "unpriced"
    assert any("dep-1" in record.getMessage() for record in caplog.records)


async def test_it_prices_on_the_event_loop_without_the_orm_refusing():
    # The rows the database has committed (bundled rows, or none after a flush: then the table).
    # price_for is synchronous and reads them off the loop's thread; aprice_for awaits them.
    assert price_for("gpt-4o-mini", "openai", "", AT).prices["input_cost_per_token"] == MINI_INPUT
    pricing.book.clear()
    quote = await aprice_for("gpt-4o-mini", "openai", "", AT)
    await sync_to_async(connections.close_all)()  # the ORM thread's, or PostgreSQL keeps the test database

    assert quote.prices["input_cost_per_token"] == MINI_INPUT
