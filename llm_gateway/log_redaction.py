"""Keep secrets out of log lines: key query values, bearer tokens and key secrets become [REDACTED].

Clients put keys where they end up in logs: ``?key=`` and ``?api_key=`` (Gemini's and some SDKs'
way), the path of ``/key/<secret>/regenerate``, an ``Authorization`` header echoed in an error.
``SecretRedactionFilter`` rewrites every record a handler emits, on stderr and in ``/ollama_logs``
alike: Django's LOGGING puts it on the root logger's handlers, ``uvicorn_log_config()`` on
uvicorn's (its access log).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"


def _patterns(stop: str) -> tuple[tuple[re.Pattern, str], ...]:
    """Return the redactions, each value ending at whitespace, a quote or a character of ``stop``."""
    return (
        # key=..., api_key=..., api-key=..., x-api-key=... in a query string or a message.
        (re.compile(rf"(?i)(?<![A-Za-z0-9])((?:x-)?api[_-]?key|key)=[^&\s\"'{stop}]+"), rf"\1={REDACTED}"),
        (re.compile(rf"(?i)\bBearer\s+[^\s\"',;{stop}]+"), f"Bearer {REDACTED}"),
        # A virtual-key secret anywhere (sk- and at least 16 URL-safe characters; display forms such
        # as sk-...wxYz do not match).
        (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), f"sk-{REDACTED}"),
    )


_PATTERNS = _patterns(stop="")
# In a message template with arguments a value ends at "%": "Bearer %s" keeps its placeholder (the
# argument itself is redacted on its own).
_TEMPLATE_PATTERNS = _patterns(stop="%")


def secrets_redact(text: str, *, template: bool = False) -> str:
    """Return ``text`` with key query values, bearer tokens and key secrets replaced by [REDACTED].

    ``template``: ``text`` is a %-format string whose placeholders must survive.
    """
    for pattern, replacement in _TEMPLATE_PATTERNS if template else _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    return secrets_redact(value) if isinstance(value, str) else value


class SecretRedactionFilter(logging.Filter):
    """Rewrite a record's message and string arguments with the secrets redacted; drop nothing.

    The arguments are rewritten in place rather than merged into the message, because some
    formatters read them (uvicorn's access formatter unpacks the client, method and path).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = secrets_redact(record.msg, template=bool(record.args))
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(value) for value in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redact_value(value) for name, value in record.args.items()}
        return True
