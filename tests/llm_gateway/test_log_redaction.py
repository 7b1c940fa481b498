"""Secrets never reach a log line: key query values, bearer tokens and key secrets are redacted."""

import logging
import uuid

import pytest
from uvicorn.logging import AccessFormatter

from llm_gateway.log_buffer import recent_lines, uvicorn_log_config
from llm_gateway.log_redaction import SecretRedactionFilter, secrets_redact

SECRET = "sk-" + "s3cr3t" * 8


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"GET /v1/models?key={SECRET}", "GET /v1/models?key=[REDACTED]"),
        (f"GET /v1/models?x=1&api_key={SECRET}&y=2", "GET /v1/models?x=1&api_key=[REDACTED]&y=2"),
        (f"GET /x?API-KEY={SECRET}", "GET /x?API-KEY=[REDACTED]"),
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer [REDACTED]"),
        (f"POST /key/{SECRET}/regenerate", "POST /key/sk-[REDACTED]/regenerate"),
        ("the key sk-...wxYz was blocked", "the key sk-...wxYz was blocked"),
        ("GET /v1/models?monkey=banana", "GET /v1/models?monkey=banana"),
    ],
)
def test_it_redacts_secrets_and_nothing_else(text, redacted):
    assert secrets_redact(text) == redacted


def test_the_access_log_keeps_its_shape_with_the_query_redacted():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/v1/models?key={SECRET}", "1.1", 401),
        None,
    )

    assert SecretRedactionFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(
        record
    )

    assert line == '127.0.0.1:5000 - "GET /v1/models?key=[REDACTED] HTTP/1.1" 401 Unauthorized'


def test_every_uvicorn_handler_redacts():
    config = uvicorn_log_config()

    assert all("redact_secrets" in handler["filters"] for handler in config["handlers"].values())


def test_a_line_logged_through_django_logging_is_redacted_in_the_recent_lines():
    marker = uuid.uuid4().hex
    logger = logging.getLogger("llm_gateway.tests")
    logger.warning("%s: called with Bearer %s and ?key=%s", marker, SECRET, SECRET)
    logger.warning(f"{marker}: inline Bearer {SECRET}")

    lines = [line for line in recent_lines.tail(2000) if marker in line]

    assert lines[0].endswith(f"{marker}: called with Bearer sk-[REDACTED] and ?key=sk-[REDACTED]")
    assert lines[1].endswith(f"{marker}: inline Bearer [REDACTED]")
    assert SECRET not in "\n".join(recent_lines.tail(2000))
