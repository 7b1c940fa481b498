"""The library imports and answers in a fresh interpreter with no Django settings at all."""

import os
import subprocess
import sys

SCRIPT = """
import sys
from llm_gateway import (completion, acompletion, text_completion, atext_completion, embedding, aembedding,
                         image_generation, aimage_generation, token_counter, completion_cost)
from llm_gateway.exceptions import (RateLimitError, Timeout, ContextWindowExceededError, BadRequestError,
    AuthenticationError, PermissionDeniedError, NotFoundError, UnprocessableEntityError, InternalServerError,
    ServiceUnavailableError, APIConnectionError, ContentPolicyViolationError, UnsupportedParamsError)
response = completion(model="mock/demo", messages=[{"role": "user", "content": "hi"}], mock_response="pong")
assert response.choices[0].message.content == "pong"
assert issubclass(ContextWindowExceededError, BadRequestError)
loaded = sorted(name for name in sys.modules if name == "django" or name.startswith("django."))
print("django modules:", loaded)
"""


def test_the_library_needs_no_django_settings():
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "django modules: []" in result.stdout
