"""The billing Django app."""

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate

from billing.schedule import schedule_install


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import pricing

        pricing.connect()  # price and deployment writes invalidate every instance's price cache
        post_migrate.connect(_schedule_install, sender=self, dispatch_uid="billing-schedule-install")


def _schedule_install(*, using: str, apps: Apps = global_apps, **_: object) -> None:
    """Install the periodic task schedule after `migrate`, once django-celery-beat's tables exist.

    `migrate` passes the migrated models' ``apps``; `flush` (test teardown) passes none: all are there.
    """
    if using != DEFAULT_DB_ALIAS:
        return
    try:
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return  # django_celery_beat is not installed, or this `migrate` has not created its tables yet
    schedule_install()
