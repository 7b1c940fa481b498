"""`manage.py seed_prices`: refresh the bundled Price rows from the bundled price table."""

from django.core.management.base import BaseCommand

from billing.services.prices import prices_seed


class Command(BaseCommand):
    help = (
        "Create or update a bundled Price row for every priced chat, completion, embedding and image "
        "model of the bundled price table (run after rebuilding it). Admins' prices are never touched."
    )

    def handle(self, *args, **options) -> None:
        result = prices_seed()
        self.stdout.write(
            self.style.SUCCESS(
                f"Bundled prices: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
        )
