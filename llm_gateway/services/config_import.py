"""Import LiteLLM's config.yaml: ``model_list`` as deployments, router and general settings as a row.

Three steps: read the YAML keeping every node's line (``config_yaml``), check it into a plan (every
problem collected with its line), apply the plan in one transaction. A file with any error changes
nothing.
Reference: https://docs.litellm.ai/docs/proxy/configs and https://docs.litellm.ai/docs/proxy/config_settings

``os.environ/NAME`` values are read from the environment at import, as LiteLLM does at load, except
``api_key``, which stays a reference (the variable is read when the deployment is called). A
deployment may reference only the variables ``llm_gateway.env_references`` allows; any other is an
error with its line, and is never read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from llm_gateway.crypto import CredentialDecryptionError, credential_decrypt
from llm_gateway.env_references import env_reference_allowed, env_reference_refusal
from llm_gateway.models import Deployment, GatewaySettings
from llm_gateway.router.settings import RouterSettings, RouterSettingsError
from llm_gateway.services.config_yaml import LineLoader, YamlMapping, YamlSequence, yaml_plain
from llm_gateway.services.deployments import deployment_create, deployment_delete, deployment_update
from providers.credentials import ENV_REFERENCE_PREFIX, env_reference, env_reference_name
from providers.exceptions import BadRequestError
from providers.registry import model_resolve

SUPPORTED_SECTIONS = frozenset({"model_list", "router_settings", "general_settings", "litellm_settings"})
# litellm_settings read (into router_settings); the section's other keys are reported as ignored.
LITELLM_CACHE_SETTINGS = {"cache": "cache_responses", "cache_params": "cache_params"}
# LiteLLM sections this gateway does not read yet.
UNSUPPORTED_SECTIONS = frozenset(
    {
        "environment_variables",
        "credential_list",
        "guardrails",
        "callback_settings",
        "mcp_servers",
        "assistant_settings",
        "files_settings",
        "finetune_settings",
        "vector_store_registry",
        "search_tools",
        "include",
    }
)
ENTRY_KEYS = frozenset({"model_name", "litellm_params", "model_info", "rpm", "tpm"})
# litellm_params that are columns of Deployment; every other one is kept in extra_params.
COLUMN_PARAMS = frozenset(
    {
        "model",
        "custom_llm_provider",
        "api_key",
        "api_base",
        "api_version",
        "rpm",
        "tpm",
        "timeout",
        "weight",
        "order",
    }
)
# Keys that are certainly misplaced when found in litellm_params (anything else may be a provider param).
MISPLACED_PARAMS = {
    "model_name": "it belongs at the entry level, next to litellm_params",
    "litellm_params": "litellm_params cannot be nested",
    "id": "the deployment id is model_info.id",
    "mode": "the mode is model_info.mode",
}
SUPPORTED_MODES = frozenset(Deployment.Mode.values)
# Modes LiteLLM knows that this gateway cannot serve yet: such entries are skipped with a warning.
UNSUPPORTED_MODES = frozenset(
    {
        "audio_transcription",
        "audio_speech",
        "moderation",
        "rerank",
        "responses",
        "batch",
        "realtime",
        "image_edit",
        "video_generation",
        "ocr",
        "search",
    }
)
# general_settings that hold secrets: never stored in the database. The master key is read by
# settings.py from the GATEWAY_CONFIG file; the others are reported as ignored.
GENERAL_SETTINGS_SECRETS = frozenset({"master_key", "database_url", "alert_to_webhook_url"})
NOT_STORED_GENERAL_SETTINGS = {
    "database_url": "the gateway's database is DATABASE_URL",
    "alert_to_webhook_url": "alerting is not supported yet (and webhook URLs are secrets)",
}


class ConfigImportError(Exception):
    """The config file cannot be imported; ``errors`` name the file and line of each problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ConfigImportReport:
    """What an import did (with ``dry_run``, what it would do); deployments as "model_name (model_id)"."""

    source: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # from an earlier import, gone from the file, kept
    pruned: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    has_master_key: bool = False
    dry_run: bool = False


@dataclass
class PlannedDeployment:
    model_id: str
    api_key: str  # "" for none, else a literal key or an os.environ/NAME reference
    fields: dict[str, Any]
    line: int
    derived_id: bool  # no model_info.id: the id comes from model_name, model and api_base

    @property
    def label(self) -> str:
        return f"{self.fields['model_name']} ({self.model_id})"


@dataclass
class ConfigPlan:
    deployments: list[PlannedDeployment] = field(default_factory=list)
    router_settings: dict[str, Any] = field(default_factory=dict)
    general_settings: dict[str, Any] = field(default_factory=dict)
    has_master_key: bool = False


class _Problems:
    """Errors and warnings, each prefixed with the file and line it concerns, listed in line order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._errors: list[tuple[int, str]] = []
        self._warnings: list[tuple[int, str]] = []

    def error(self, line: int, message: str) -> None:
        self._errors.append((line, message))

    def warning(self, line: int, message: str) -> None:
        self._warnings.append((line, message))

    @property
    def error_count(self) -> int:
        return len(self._errors)

    @property
    def errors(self) -> list[str]:
        return self._sorted(self._errors)

    @property
    def warnings(self) -> list[str]:
        return self._sorted(self._warnings)

    def _sorted(self, problems: list[tuple[int, str]]) -> list[str]:
        return [
            f"{self.source}, line {line}: {message}" if line else f"{self.source}: {message}"
            for line, message in sorted(problems, key=lambda problem: problem[0])
        ]


def config_load(*, text: str, source: str) -> Any:
    """Return the YAML document in ``text``, or raise ConfigImportError naming the line of a syntax error."""
    try:
        return yaml.load(text, Loader=LineLoader)  # a SafeLoader: builds only plain YAML types
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        context = ""
        if error.context and error.context_mark and error.context_mark is not mark:
            context = f" ({error.context} at line {error.context_mark.line + 1})"
        elif error.context:
            context = f" ({error.context})"
        raise ConfigImportError([f"{source}, {where}: invalid YAML: {error.problem}{context}"]) from None
    except yaml.YAMLError as error:
        raise ConfigImportError([f"{source}: invalid YAML: {error}"]) from None


def config_plan(*, document: Any, source: str) -> tuple[ConfigPlan, list[str]]:
    """Return the deployments and settings a loaded config defines, with warnings; raise on any error."""
    problems = _Problems(source)
    plan = ConfigPlan()
    if document is None:
        problems.warning(0, "the file is empty")
        document = YamlMapping()
    if not isinstance(document, YamlMapping):
        raise ConfigImportError([f"{source}, line 1: the file must be a mapping (model_list: ...)"])
    _duplicates_report(document, problems)
    for key, line in document.key_lines.items():
        if key in UNSUPPORTED_SECTIONS:
            problems.warning(line, f"{key}: ignored: not supported yet")
        elif key not in SUPPORTED_SECTIONS:
            problems.warning(line, f"unknown top-level key {key!r}: ignored")
    model_list = _section(document, "model_list", YamlSequence, problems)
    ids: dict[str, int] = {}
    for index, entry in enumerate(model_list or ()):
        planned = _entry_plan(entry, f"model_list[{index}]", model_list.item_lines[index], problems)
        if planned is not None:
            _unique_id(planned, ids, problems)
            plan.deployments.append(planned)
    router = _section(document, "router_settings", YamlMapping, problems) or {}
    plan.router_settings = yaml_plain(router)
    litellm = _section(document, "litellm_settings", YamlMapping, problems) or {}
    for key, target in LITELLM_CACHE_SETTINGS.items():
        if key in litellm:
            plan.router_settings.setdefault(target, yaml_plain(litellm)[key])
    ignored = sorted(set(litellm) - set(LITELLM_CACHE_SETTINGS))
    if ignored:
        problems.warning(
            document.key_lines["litellm_settings"],
            f"litellm_settings: ignored: {', '.join(map(str, ignored))}",
        )
    try:
        RouterSettings.parse(plan.router_settings)
    except RouterSettingsError as error:
        problems.error(router.line or litellm.line or 1, str(error))
    for key in ("redis_password",):
        if isinstance(router.get(key), str) and not router[key].startswith(ENV_REFERENCE_PREFIX):
            problems.warning(
                router.key_lines[key], f"router_settings.{key} is stored in clear; use os.environ/NAME"
            )
    general = _section(document, "general_settings", YamlMapping, problems) or {}
    plan.has_master_key = general.get("master_key") is not None
    plan.general_settings = {
        key: value for key, value in yaml_plain(general).items() if key not in GENERAL_SETTINGS_SECRETS
    }
    for key, reason in NOT_STORED_GENERAL_SETTINGS.items():
        if key in general:
            problems.warning(general.key_lines[key], f"general_settings.{key}: ignored: {reason}")
    unused = sorted(set(general) - GENERAL_SETTINGS_SECRETS)
    if unused:
        problems.warning(
            general.line, f"general_settings: stored but not used yet: {', '.join(map(str, unused))}"
        )
    if problems.errors:
        raise ConfigImportError(problems.errors)
    return plan, problems.warnings


def config_import(*, path: str | Path, prune: bool = False, dry_run: bool = False) -> ConfigImportReport:
    """Import a LiteLLM config file in one transaction and return what changed.

    Deployments are matched by ``model_info.id`` (or an id derived from model_name, model and
    api_base); ones an earlier import created that the file no longer has are reported, and deleted
    only with ``prune``. ``dry_run`` checks and reports without writing. Raise ConfigImportError.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigImportError([f"{source}: cannot be read: {error}"]) from None
    plan, warnings = config_plan(document=config_load(text=text, source=source), source=source)
    report = ConfigImportReport(
        source=source, warnings=warnings, has_master_key=plan.has_master_key, dry_run=dry_run
    )
    with transaction.atomic():
        _apply(plan, report, prune=prune)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _apply(plan: ConfigPlan, report: ConfigImportReport, *, prune: bool) -> None:
    # Create the row first, then lock it: concurrent imports (replicas starting together) queue here.
    GatewaySettings.objects.get_or_create(pk=1)
    row = GatewaySettings.objects.select_for_update().get(pk=1)
    planned_ids = [planned.model_id for planned in plan.deployments]
    existing = Deployment.objects.in_bulk(planned_ids, field_name="model_id")
    for planned in plan.deployments:
        deployment = existing.get(planned.model_id)
        if deployment is None:
            deployment_create(model_id=planned.model_id, api_key=planned.api_key, **planned.fields)
            report.created.append(planned.label)
        elif _differs(deployment, planned):
            # enabled and health_status are operational state (admin, health checks): left as they are.
            deployment_update(deployment=deployment, api_key=planned.api_key, **planned.fields)
            report.updated.append(planned.label)
        else:
            report.unchanged.append(planned.label)
    gone = Deployment.objects.filter(model_id__in=set(row.config_model_ids) - set(planned_ids))
    gone = list(gone.order_by("model_name", "model_id"))
    gone_labels = [f"{deployment.model_name} ({deployment.model_id})" for deployment in gone]
    if prune:
        for deployment in gone:
            deployment_delete(deployment=deployment)
        report.pruned = gone_labels
    else:
        report.missing = gone_labels
    row.router_settings = plan.router_settings
    row.general_settings = plan.general_settings
    row.config_model_ids = planned_ids + ([] if prune else [deployment.model_id for deployment in gone])
    row.save()


def _differs(deployment: Deployment, planned: PlannedDeployment) -> bool:
    if any(getattr(deployment, name) != value for name, value in planned.fields.items()):
        return True
    key = planned.api_key
    if key.startswith(ENV_REFERENCE_PREFIX):
        return deployment.credential != "" or deployment.credential_env != key[len(ENV_REFERENCE_PREFIX) :]
    if deployment.credential_env:
        return True
    try:
        return credential_decrypt(deployment.credential) != key
    except CredentialDecryptionError:
        return True


def _section(document: YamlMapping, name: str, kind: type, problems: _Problems) -> Any:
    value = document.get(name)
    if value is None or isinstance(value, kind):
        return value
    expected = "a list" if kind is YamlSequence else "a mapping"
    problems.error(document.key_lines[name], f"{name} must be {expected}")
    return None


def _duplicates_report(value: Any, problems: _Problems) -> None:
    if isinstance(value, YamlMapping):
        for key, line in value.duplicates:
            problems.warning(line, f"duplicate key {key!r}: the last one is used")
        for item in value.values():
            _duplicates_report(item, problems)
    elif isinstance(value, YamlSequence):
        for item in value:
            _duplicates_report(item, problems)


def _entry_plan(entry: Any, label: str, line: int, problems: _Problems) -> PlannedDeployment | None:
    """Return one model_list entry as a planned deployment, or None when it has errors or is skipped."""
    if not isinstance(entry, YamlMapping):
        problems.error(line, f"{label} must be a mapping with model_name and litellm_params")
        return None
    errors_before = problems.error_count
    for key in entry.keys() - ENTRY_KEYS:
        problems.warning(entry.key_lines[key], f"{label}: unknown key {key!r}: ignored")
    model_name = entry.get("model_name")
    if not isinstance(model_name, str) or not model_name.strip():
        problems.error(
            entry.key_lines.get("model_name", line), f"{label}.model_name must be a non-empty string"
        )
    params = entry.get("litellm_params")
    if not isinstance(params, YamlMapping):
        problems.error(
            entry.key_lines.get("litellm_params", line),
            f"{label}.litellm_params must be a mapping with model",
        )
        return None
    info = entry.get("model_info")
    if info is None:
        info = YamlMapping()
    elif not isinstance(info, YamlMapping):
        problems.error(entry.key_lines["model_info"], f"{label}.model_info must be a mapping")
        return None
    fields = _params_fields(params, f"{label}.litellm_params", problems)
    for limit in ("rpm", "tpm"):  # LiteLLM also reads them at the entry level
        if fields.get(limit) is None and limit in entry:
            fields[limit] = _number(entry, limit, f"{label}.{limit}", problems, kind=int)
    mode = info.get("mode", Deployment.Mode.CHAT)
    if not isinstance(mode, str):
        problems.error(info.key_lines["mode"], f"{label}.model_info.mode must be a string")
    elif mode in UNSUPPORTED_MODES:
        problems.warning(
            info.key_lines["mode"], f"{label}: mode {mode!r} is not supported yet: entry skipped"
        )
        return None
    elif mode not in SUPPORTED_MODES:
        problems.error(
            info.key_lines.get("mode", line),
            f"{label}.model_info.mode {mode!r} is not one of {', '.join(sorted(SUPPORTED_MODES))}",
        )
    model_id = info.get("id")
    if model_id is not None and (not isinstance(model_id, str | int) or isinstance(model_id, bool)):
        problems.error(info.key_lines["id"], f"{label}.model_info.id must be a string")
    if problems.error_count > errors_before:
        return None
    fields.update(
        model_name=model_name, mode=mode, model_info=yaml_plain({k: v for k, v in info.items() if k != "id"})
    )
    api_key = fields.pop("api_key")
    if model_id is not None:
        return PlannedDeployment(str(model_id), api_key, fields, info.key_lines["id"], derived_id=False)
    raw = f"{model_name}\n{params['model']}\n{params.get('api_base') or ''}"
    return PlannedDeployment(
        hashlib.sha256(raw.encode()).hexdigest()[:32], api_key, fields, line, derived_id=True
    )


def _params_fields(params: YamlMapping, label: str, problems: _Problems) -> dict[str, Any]:
    """Return the Deployment fields litellm_params set; the other params go to extra_params."""
    fields = {
        **_provider_fields(params, label, problems),
        **_endpoint_fields(params, label, problems),
        "rpm": _number(params, "rpm", f"{label}.rpm", problems, kind=int),
        "tpm": _number(params, "tpm", f"{label}.tpm", problems, kind=int),
        "timeout": _number(params, "timeout", f"{label}.timeout", problems, kind=float, minimum=0.001),
    }
    weight = _number(params, "weight", f"{label}.weight", problems, kind=float)
    fields["weight"] = 1.0 if weight is None else weight
    order = _number(params, "order", f"{label}.order", problems, kind=int)
    fields["order"] = 1 if order is None else order
    fields["extra_params"] = extra = {}
    for name, value in params.items():
        if name in MISPLACED_PARAMS:
            problems.warning(params.key_lines[name], f"{label}.{name}: ignored: {MISPLACED_PARAMS[name]}")
        elif name not in COLUMN_PARAMS:
            extra[name] = _resolved(yaml_plain(value), f"{label}.{name}", params.key_lines[name], problems)
    return fields


def _provider_fields(params: YamlMapping, label: str, problems: _Problems) -> dict[str, str]:
    """Return the provider and its model id, from ``model`` (and ``custom_llm_provider``)."""
    model, provider = params.get("model"), params.get("custom_llm_provider")
    if not isinstance(model, str) or not model:
        line = params.key_lines.get("model", params.line)
        problems.error(line, f"{label}.model must be a non-empty string")
        return {}
    if provider is not None and not isinstance(provider, str):
        problems.error(
            params.key_lines["custom_llm_provider"], f"{label}.custom_llm_provider must be a string"
        )
        return {}
    try:
        spec, provider_model = model_resolve(model, provider)
    except BadRequestError as error:
        line = params.key_lines.get("custom_llm_provider", params.key_lines["model"])
        problems.error(line, f"{label}.model {model!r}: {error.message}")
        return {}
    return {"provider": spec.name, "model": provider_model}


def _endpoint_fields(params: YamlMapping, label: str, problems: _Problems) -> dict[str, str]:
    """Return api_key (kept as written), api_base and api_version (environment references read)."""
    fields = {"api_key": "", "api_base": "", "api_version": ""}
    for name in fields:
        value = params.get(name)
        if value is None:
            continue
        line = params.key_lines[name]
        if not isinstance(value, str):
            problems.error(line, f"{label}.{name} must be a string")
        elif name == "api_key":
            fields[name] = value
            if not _reference_allowed(value, f"{label}.api_key", line, problems):
                continue
            if value.startswith(ENV_REFERENCE_PREFIX) and env_reference(value) is None:
                problems.warning(
                    line,
                    f"{label}.api_key: environment variable {value[len(ENV_REFERENCE_PREFIX) :]} is not set "
                    "here (the reference is kept; calls fail until it is set where the gateway runs)",
                )
        else:
            fields[name] = _resolved(value, f"{label}.{name}", line, problems) or ""
    if fields["api_base"] and not fields["api_base"].startswith(("http://", "https://")):
        problems.error(params.key_lines["api_base"], f"{label}.api_base must be an http:// or https:// URL")
    return fields


def _number(
    mapping: YamlMapping, name: str, label: str, problems: _Problems, *, kind: type, minimum: float = 0
) -> int | float | None:
    value = mapping.get(name)
    if value is None:
        return None
    value = _resolved(value, label, mapping.key_lines[name], problems)
    if value is None:  # an unset variable, already reported
        return None
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        problems.error(mapping.key_lines[name], f"{label} must be {noun}, not {value!r}")
        return None
    if number < minimum:
        problems.error(mapping.key_lines[name], f"{label} must be at least {minimum:g}")
        return None
    return number


def _resolved(value: Any, label: str, line: int, problems: _Problems) -> Any:
    """Return ``value`` with its ``os.environ/NAME`` strings read from the environment."""
    if isinstance(value, dict):
        return {key: _resolved(item, label, line, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, label, line, problems) for item in value]
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        if not _reference_allowed(value, label, line, problems):
            return None
        resolved = env_reference(value)
        if resolved is None:
            problems.error(
                line, f"{label}: environment variable {value[len(ENV_REFERENCE_PREFIX) :]} is not set"
            )
        return resolved
    return value


def _reference_allowed(value: str, label: str, line: int, problems: _Problems) -> bool:
    """Return whether a deployment may read the variable ``value`` references; report it if not."""
    name = env_reference_name(value)
    if name is None or env_reference_allowed(name):
        return True
    problems.error(line, f"{label}: {env_reference_refusal([name])}")
    return False


def _unique_id(planned: PlannedDeployment, seen: dict[str, int], problems: _Problems) -> None:
    """Make a derived id unique by its occurrence (2nd, 3rd...); report a repeated model_info.id."""
    if planned.derived_id:
        base, count = planned.model_id, 1
        while planned.model_id in seen:
            count += 1
            planned.model_id = f"{base}-{count}"
    elif planned.model_id in seen:
        problems.error(
            planned.line,
            f"model_info.id {planned.model_id!r} is already used at line {seen[planned.model_id]}",
        )
        return
    seen[planned.model_id] = planned.line
