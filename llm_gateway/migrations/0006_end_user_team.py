# End users are scoped to a team (or a key owner, or the gateway): their identity becomes
# (team, owner, user_id) with an auto id. Django cannot change a primary key in place on every
# backend, so the rows move to a new table, which then takes the old one's name. Existing end users
# were shared by every key: they become the gateway's own (no team, no owner).

import django.db.models.deletion
from decimal import Decimal

from django.conf import settings
from django.db import migrations, models

import llm_gateway.budget_durations

FIELDS = (
    "user_id", "alias", "max_budget", "budget_duration", "budget_reset_at", "spend", "blocked", "metadata",
    "created_at", "updated_at",
)


def _copy(schema_editor, source, target, where: str = "") -> None:
    """Copy the rows of one table into the other in one INSERT ... SELECT (times kept as they are)."""
    quote = schema_editor.quote_name
    columns = ", ".join(quote(name) for name in FIELDS)
    schema_editor.execute(
        f"INSERT INTO {quote(target._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {quote(source._meta.db_table)}{where}"
    )


def end_users_copy(apps, schema_editor):
    old, new = apps.get_model("llm_gateway", "EndUser"), apps.get_model("llm_gateway", "ScopedEndUser")
    _copy(schema_editor, old, new)


def end_users_copy_back(apps, schema_editor):
    old, new = apps.get_model("llm_gateway", "EndUser"), apps.get_model("llm_gateway", "ScopedEndUser")
    # Only the gateway's own go back: the old table holds one end user per id.
    _copy(schema_editor, new, old, " WHERE team_id IS NULL AND owner_id IS NULL")


class Migration(migrations.Migration):

    dependencies = [
        ("llm_gateway", "0005_deployment_health"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ScopedEndUser",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.CharField(help_text="The `user` the callers send.", max_length=200)),
                ("alias", models.CharField(blank=True, default="", max_length=200)),
                ("max_budget", models.DecimalField(blank=True, decimal_places=10, max_digits=20, null=True)),
                (
                    "budget_duration",
                    models.CharField(
                        blank=True,
                        default="",
                        max_length=16,
                        validators=[llm_gateway.budget_durations.validate_budget_duration],
                    ),
                ),
                ("budget_reset_at", models.DateTimeField(blank=True, null=True)),
                ("spend", models.DecimalField(decimal_places=10, default=Decimal("0"), max_digits=20)),
                ("blocked", models.BooleanField(default=False)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "owner",
                    models.ForeignKey(
                        blank=True,
                        help_text="For the keys of this user that have no team. Empty with no team: the gateway's own.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="end_users",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="end_users",
                        to="llm_gateway.team",
                    ),
                ),
            ],
            options={
                "ordering": ["user_id", "id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("team__isnull", True), ("owner__isnull", True), _connector="OR"),
                        name="end_user_team_or_owner",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("team__isnull", False)),
                        fields=("team", "user_id"),
                        name="one_end_user_per_team_and_id",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("owner__isnull", False)),
                        fields=("owner", "user_id"),
                        name="one_end_user_per_owner_and_id",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("owner__isnull", True), ("team__isnull", True)),
                        fields=("user_id",),
                        name="one_gateway_end_user_per_id",
                    ),
                ],
            },
        ),
        migrations.RunPython(end_users_copy, end_users_copy_back),
        migrations.DeleteModel(name="EndUser"),
        migrations.RenameModel(old_name="ScopedEndUser", new_name="EndUser"),
    ]
