"""`manage.py import_config config.yaml`: import a LiteLLM config file (deployments and settings)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from llm_gateway.conf import gateway_setting
from llm_gateway.services.config_import import ConfigImportError, ConfigImportReport, config_import


class Command(BaseCommand):
    help = (
        "Import a LiteLLM config.yaml: model_list as deployments, router_settings and general_settings. "
        "Safe to repeat: deployments are matched by model_info.id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The config file (LiteLLM's config.yaml format).")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Delete deployments an earlier import made that the file lacks.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and report, change nothing.")

    def handle(self, *args, path: str, prune: bool, dry_run: bool, **options) -> None:
        try:
            report = config_import(path=path, prune=prune, dry_run=dry_run)
        except ConfigImportError as error:
            raise CommandError(f"{path} was not imported, nothing changed:\n{error}") from None
        report_print(report, self.stdout, style=self.style)


def report_print(report: ConfigImportReport, out: OutputWrapper, *, style) -> None:
    """Write an import report for an operator (shared with `manage.py start` and `serve`)."""
    verb = "Checked (dry run, nothing written)" if report.dry_run else "Imported"
    out.write(
        style.SUCCESS(
            f"{verb} {report.source}: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.pruned)} removed."
        )
    )
    for title, labels in (
        ("Created", report.created),
        ("Updated", report.updated),
        ("Removed", report.pruned),
    ):
        for label in labels:
            out.write(f"  {title}: {label}")
    for label in report.missing:
        out.write(style.WARNING(f"  Not in the file any more (kept; --prune removes it): {label}"))
    for warning in report.warnings:
        out.write(style.WARNING(f"Warning: {warning}"))
    if report.has_master_key and not _is_gateway_config(report.source):
        out.write(
            style.WARNING(
                "Note: general_settings.master_key is read only from the file named by GATEWAY_CONFIG, "
                "when the gateway starts; importing this file does not change the master key."
            )
        )


def _is_gateway_config(source: str) -> bool:
    configured = gateway_setting("CONFIG_PATH")
    return bool(configured) and Path(configured).resolve() == Path(source).resolve()
