"""Fuzz the inference endpoints of a live gateway, and check that extreme fields cost no memory.

Bodies mix valid fields with wrong types, extremes, huge numbers, unicode, NULs and deep nesting, for
chat, completions, embeddings, images, models and the Azure paths, on the mock provider. Whatever
arrives, the gateway answers below 500, in JSON (server-sent events for a stream it serves), and
every 4xx in OpenAI's error shape. Bounded: a fixed number of examples, derandomized so every run
sends the same ones.

The memory check sends each field at its extreme (n, max_tokens, size, a prompt just under the body
limit, 1000 levels of nesting, ...) after a warm-up and reads the process's resident set from
/proc: the requests must not make it grow by more than a few MB.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

MESSAGES = [{"role": "user", "content": "Hello"}]
SEED = """
from decimal import Decimal
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
deployment_create(model_name="demo", provider="mock", model="demo", extra_params={"mock_response": "Hi!"})
deployment_create(model_name="painter", provider="mock", model="painter", mode="image_generation")
# A budget, so every request is admitted against it (the hold reads n, max_tokens, the prompt).
_, secret = virtual_key_create(key_alias="fuzz", models=["demo", "painter"], max_budget=Decimal("1000"))
print(secret)
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the process's memory from /proc")


@pytest.fixture(scope="module")
def secret(gateway) -> str:
    return gateway.run_python(SEED)


@pytest.fixture(scope="module")
def client(gateway, secret):
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        yield client


# Values of every JSON type, small and extreme: the wrong-type and out-of-range half of each field.
HUGE_INTEGERS = st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30)])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | HUGE_INTEGERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "\x00", "a\x00b", "\u202e\ufeff", "😀" * 10, "x" * 5000])
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int) -> object:
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


NESTED = st.integers(min_value=60, max_value=400).map(deep)
ODD = JUNK | NESTED

# Valid values of each field; a request then has a few of its fields (or its whole body) replaced
# by odd ones, so that most requests get past validation into admission, the router and the mock.
TEXT = st.text(max_size=60)
CONTENT_PARTS = st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
    | st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": TEXT})})
    | st.fixed_dictionaries({"type": st.just("input_audio")}),
    min_size=1,
    max_size=3,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT | CONTENT_PARTS | st.none()},
    optional={"name": st.text(min_size=1, max_size=10)},
)
TOKENS = st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=20)
TEXTS = st.lists(TEXT, min_size=1, max_size=4)
PROMPT = TEXT.filter(bool) | TEXTS | TOKENS | st.lists(TOKENS, min_size=1, max_size=3)
COMMON = {
    "user": st.text(alphabet=st.characters(min_codepoint=32, blacklist_characters="\x7f"), max_size=200),
    "metadata": st.dictionaries(st.text(max_size=5), JUNK, max_size=3),
    "timeout": st.floats(min_value=0.1, max_value=600),
    "mock_delay": st.floats(min_value=0, max_value=1000),
    "mock_response": TEXT,
    "mock_timeout": st.booleans(),
    "cache": st.fixed_dictionaries({}, optional={"no-cache": st.booleans()}),
    "unknown_field": JUNK,
}
GENERATION = {
    **COMMON,
    "n": st.integers(min_value=1, max_value=128),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "max_tokens": st.integers(min_value=1, max_value=1_000_000),
    "max_completion_tokens": st.integers(min_value=1, max_value=1_000_000),
    "temperature": st.floats(min_value=0, max_value=2),
    "top_p": st.floats(min_value=0, max_value=1),
    "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=3),
}
BODIES = {
    "chat": st.fixed_dictionaries(
        {"model": st.just("demo"), "messages": st.lists(MESSAGE, min_size=1, max_size=4)},
        optional={
            **GENERATION,
            "tools": st.lists(st.fixed_dictionaries({"type": st.just("function")}), max_size=2),
        },
    ),
    "text_completion": st.fixed_dictionaries(
        {"model": st.just("demo"), "prompt": PROMPT}, optional=GENERATION
    ),
    "embedding": st.fixed_dictionaries(
        {"model": st.just("demo"), "input": PROMPT},
        optional={**COMMON, "encoding_format": st.sampled_from(["float", "base64"])},
    ),
    "image_generation": st.fixed_dictionaries(
        {"model": st.just("painter"), "prompt": TEXT.filter(bool)},
        optional={
            **COMMON,
            "n": st.integers(min_value=1, max_value=10),
            "size": st.sampled_from(["1024x1024", "256x256", "1792x1024"]),
            "quality": st.sampled_from(["standard", "hd"]),
            "response_format": st.sampled_from(["url", "b64_json"]),
        },
    ),
}
# Fields an odd value may land on (any operation's, so each path also sees the others' fields).
FIELDS = sorted({"model", "messages", "prompt", "input", "size", "quality", "tools", *GENERATION})
PATHS = {
    "chat": ["/v1/chat/completions", "/chat/completions", "/openai/deployments/demo/chat/completions"],
    "text_completion": ["/v1/completions", "/completions", "/openai/deployments/demo/completions"],
    "embedding": ["/v1/embeddings", "/embeddings", "/openai/deployments/demo/embeddings"],
    "image_generation": ["/v1/images/generations", "/images/generations"],
}
RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b"{",
    b'{"model": "demo", "messages": [{"role": "user", "content": "\x00"}]}',
    b'{"model": "demo", "n": NaN, "messages": []}',
    b'{"model": "demo", "n": 1e400}',
    b"\xff\xfe garbage",
    b'{"model": "demo", "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
]


@st.composite
def requests(draw) -> tuple[str, bytes, bool]:
    """Return a request: its path, its body and whether it carries the key."""
    operation = draw(st.sampled_from(sorted(PATHS)))
    path = draw(st.sampled_from(PATHS[operation]))
    with_key = draw(st.sampled_from([True] * 9 + [False]))  # about one request in ten has no key
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        return path, draw(st.sampled_from(RAW_BODIES)), with_key
    body = draw(BODIES[operation])
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        body[field] = draw(ODD)
    return path, json.dumps(body).encode(), with_key


MODEL_LOOKUPS = st.tuples(
    st.sampled_from(["/v1/models", "/models", "/v1/models/"]),
    st.just("") | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
)


def assert_well_formed(response: httpx.Response, asked_to_stream: bool) -> None:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    kind = response.headers.get("content-type", "")
    if status == 200 and kind.startswith("text/event-stream"):
        assert asked_to_stream
        events = [line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", response.text[-500:]
        for event in events[:-1]:
            assert isinstance(json.loads(event), dict)
        return
    assert kind.startswith("application/json"), f"{status} {kind}: {response.text[:500]}"
    payload = response.json()
    if status >= 400:
        error = payload["error"]
        assert set(error) >= {"message", "type", "param", "code"}, payload
        assert isinstance(error["message"], str) and error["message"]


def _asked_to_stream(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


FUZZ = settings(
    max_examples=800,
    deadline=timedelta(seconds=20),  # a request that hangs fails the run rather than stalling it
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@given(sent=requests())
def test_any_body_on_any_inference_path_is_answered_below_500_in_json(client, secret, sent):
    path, body, with_key = sent
    headers = {"Content-Type": "application/json"}
    if with_key:
        headers["Authorization"] = f"Bearer {secret}"

    response = client.post(path, content=body, headers=headers)

    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    assert_well_formed(response, _asked_to_stream(body))


@settings(FUZZ, max_examples=40)
@given(lookup=MODEL_LOOKUPS)
def test_any_model_lookup_is_answered_below_500_in_json(client, secret, lookup):
    prefix, name = lookup

    response = client.get(prefix + quote(name, safe="/"), headers={"Authorization": f"Bearer {secret}"})

    assert_well_formed(response, asked_to_stream=False)


def _resident_kilobytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


BODY_LIMIT = 2_621_440  # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE, which the gateway keeps


def _extremes() -> list[tuple[str, bytes]]:
    def chat(**fields) -> bytes:
        return json.dumps({"model": "demo", "messages": MESSAGES, **fields}).encode()

    def image(**fields) -> bytes:
        return json.dumps({"model": "painter", "prompt": "x", **fields}).encode()

    filler = BODY_LIMIT - 1024
    giant_prompt = chat(messages=[{"role": "user", "content": "word " * (filler // 5)}])
    many_messages = chat(messages=[{"role": "user", "content": "x"}] * (filler // 40))
    token_ids = json.dumps({"model": "demo", "input": [7] * (filler // 3)}).encode()
    return [
        ("/v1/images/generations", image(n=10**9)),
        ("/v1/images/generations", image(size="9" * 100_000)),
        ("/v1/chat/completions", chat(n=10**6)),
        ("/v1/chat/completions", chat(n=128)),
        ("/v1/chat/completions", chat(max_tokens=2**63 - 1)),
        ("/v1/chat/completions", chat(max_tokens=10**30)),
        ("/v1/chat/completions", chat(user="u" * 100_000)),
        ("/v1/chat/completions", chat(mock_delay=10**9)),
        ("/v1/chat/completions", chat(x="X")[:-1] + b', "y": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001),
        ("/v1/chat/completions", b'{"model": "demo", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
        ("/v1/chat/completions", giant_prompt),
        ("/v1/chat/completions", many_messages),
        ("/v1/embeddings", token_ids),
        ("/v1/chat/completions", b"x" * (BODY_LIMIT + 1)),
    ]


def test_requests_with_fields_at_their_extremes_do_not_grow_the_process(gateway, client, secret):
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    extremes = _extremes()
    assert all(len(body) <= BODY_LIMIT for _, body in extremes[:-1])

    def send_all() -> list[int]:
        return [client.post(path, content=body, headers=headers).status_code for path, body in extremes]

    for _ in range(2):  # warm-up: tokenizers, price tables, snapshots, allocator arenas
        send_all()
    before = _resident_kilobytes(gateway.process.pid)
    statuses = [status for _ in range(3) for status in send_all()]
    after = _resident_kilobytes(gateway.process.pid)

    assert max(statuses) < 500
    growth_mb = (after - before) / 1024
    assert growth_mb <= 20, f"the gateway grew by {growth_mb:.1f} MB over {len(statuses)} extreme requests"
