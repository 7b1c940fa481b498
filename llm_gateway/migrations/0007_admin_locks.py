# Keys record the limits a gateway admin set (team admins may tighten them, not lift them), and
# their display form shows no more than the secret's last 4 characters: "sk-AbCd...wxYz" becomes
# "sk-...wxYz" (the old form's tail is the secret's tail, so no secret is needed to rewrite it).

from django.db import migrations, models

OLD_SEPARATOR = "..."


def _display_shorten(apps, schema_editor) -> None:
    VirtualKey = apps.get_model("llm_gateway", "VirtualKey")
    changed = []
    for key in VirtualKey.objects.only("token", "key_prefix").iterator():
        _, separator, tail = key.key_prefix.rpartition(OLD_SEPARATOR)
        shortened = f"sk-...{tail[-4:]}" if separator else key.key_prefix
        if shortened != key.key_prefix:
            key.key_prefix = shortened
            changed.append(key)
    VirtualKey.objects.bulk_update(changed, ["key_prefix"], batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ("llm_gateway", "0006_end_user_team"),
    ]

    operations = [
        migrations.AddField(
            model_name="virtualkey",
            name="admin_locked",
            field=models.JSONField(
                blank=True,
                default=list,
                editable=False,
                help_text="Limits a gateway admin set, which team admins may tighten but not lift "
                "(llm_gateway.admin_locks).",
            ),
        ),
        migrations.RunPython(_display_shorten, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="virtualkey",
            name="allowed_cache_controls",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Cache controls requests may use (no-cache, no-store, ttl, namespace); "
                "empty allows all but namespace.",
            ),
        ),
    ]
