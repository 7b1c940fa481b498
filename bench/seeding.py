"""Seed a benchmark gateway's database: ``python -m bench.seeding base|keys|deployments ...``.

Run in a subprocess with the gateway's environment (``bench.servers.gateway_seed``), since it needs
Django set up on that gateway's database. ``base`` goes through the services, as an admin would;
``keys`` and ``deployments`` bulk-create rows, which is the only way to get 100,000 keys in seconds.
The project's modules are imported inside the functions: ``main`` sets Django up first.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

import django

# Every feature on: budgets and rate limits, high enough never to refuse, so each request is admitted,
# held, priced, settled and written to the ledger.
LIMITS = {
    "max_budget": Decimal("1000000000"),
    "budget_duration": "30d",
    "rpm_limit": 10**9,
    "tpm_limit": 2 * 10**9,  # PositiveIntegerField: below 2**31
    "max_parallel_requests": 100_000,
}
# An admin's price for the bench model, so every request is priced from a Price row.
INPUT_PRICE = Decimal("0.00000015")
OUTPUT_PRICE = Decimal("0.0000006")
TEAM_ALIAS = "bench"


def base_seed(*, key: str, deployments: dict[str, str]) -> None:
    """Create the bench team and key, two deployments per model group, and the bench model's price."""
    from bench.scenarios import DEPLOYMENTS_PER_GROUP
    from bench.servers import UPSTREAM_KEY
    from bench.upstream import MODEL
    from billing.models import Price
    from llm_gateway.services.deployments import deployment_create
    from llm_gateway.services.keys import virtual_key_create
    from llm_gateway.services.teams import team_create

    team = team_create(team_alias=TEAM_ALIAS, **LIMITS)
    virtual_key_create(secret=key, key_alias="bench", team=team, **LIMITS)
    for name, api_base in deployments.items():
        for _ in range(DEPLOYMENTS_PER_GROUP):
            deployment_create(
                model_name=name, provider="openai", model=MODEL, api_base=api_base, api_key=UPSTREAM_KEY
            )
    Price.objects.create(
        model=MODEL, provider="openai", input_cost_per_token=INPUT_PRICE, output_cost_per_token=OUTPUT_PRICE
    )


def keys_seed(*, first: int, count: int) -> None:
    """Bulk-create the scale keys ``first`` .. ``first + count - 1`` in the bench team."""
    from bench.scale import scale_key_secret
    from llm_gateway.crypto import virtual_key_display, virtual_key_hash
    from llm_gateway.models import Team, VirtualKey

    team = Team.objects.get(team_alias=TEAM_ALIAS)
    rows = []
    for index in range(first, first + count):
        secret = scale_key_secret(index)
        rows.append(
            VirtualKey(
                key_hash=virtual_key_hash(secret),
                key_prefix=virtual_key_display(secret),
                key_alias=f"scale-{index}",
                team=team,
                **LIMITS,
            )
        )
    VirtualKey.objects.bulk_create(rows, batch_size=5000)


def deployments_seed(*, first: int, count: int, api_base: str) -> None:
    """Bulk-create deployments ``first`` .. in groups of two (``other-N``), then tell the gateway."""
    from bench.servers import UPSTREAM_KEY
    from bench.upstream import MODEL
    from llm_gateway.crypto import credential_encrypt
    from llm_gateway.lookups import config_changed
    from llm_gateway.models import Deployment

    credential = credential_encrypt(UPSTREAM_KEY)
    rows = [
        Deployment(
            model_name=f"other-{index // 2}",
            provider="openai",
            model=MODEL,
            api_base=api_base,
            credential=credential,
        )
        for index in range(first, first + count)
    ]
    Deployment.objects.bulk_create(rows, batch_size=1000)
    # bulk_create sends no signal: say it, as an admin's save would, for the running gateway to reload.
    config_changed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    base = commands.add_parser("base")
    base.add_argument("--key", required=True)
    base.add_argument("--deployments", required=True, help="JSON: model group -> api_base")
    keys = commands.add_parser("keys")
    deployments = commands.add_parser("deployments")
    deployments.add_argument("--api-base", required=True)
    for command in (keys, deployments):
        command.add_argument("--first", type=int, required=True)
        command.add_argument("--count", type=int, required=True)
    arguments = parser.parse_args()
    django.setup()
    if arguments.command == "base":
        base_seed(key=arguments.key, deployments=json.loads(arguments.deployments))
    elif arguments.command == "keys":
        keys_seed(first=arguments.first, count=arguments.count)
    else:
        deployments_seed(first=arguments.first, count=arguments.count, api_base=arguments.api_base)


if __name__ == "__main__":
    main()
