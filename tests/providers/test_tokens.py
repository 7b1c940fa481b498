"""Token counts are checked against tiktoken's own results for these strings.

Per-string counts used below (cl100k_base and o200k_base agree on all of them): "system", "user",
"assistant", "tool" = 1; "You are helpful." = 4; "What is 2+2?" = 7; "2+2 is 4." = 7; "example_user" = 2;
"Describe this." = 3; "get_weather" = 2; '{"city":"Paris"}' = 5; "22C and sunny" = 4.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import orjson
import pytest

from providers.exceptions import BadRequestError
from providers.tokens import encoding_for_model, get_encoding, token_counter, token_upper_bound

REPO_ROOT = Path(__file__).resolve().parents[2]

CONVERSATION = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "name": "example_user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "2+2 is 4."},
]


def run_offline(code, cache_dir, extra_env=None):
    """Run ``code`` in a fresh interpreter that has no network and an empty tiktoken cache."""
    env = {
        **os.environ,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "TIKTOKEN_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": str(REPO_ROOT),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cache_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hello_world_is_two_tokens_in_both_encodings():
    assert token_counter("gpt-4", text="hello world") == 2
    assert token_counter("gpt-4o", text="hello world") == 2


def test_it_sums_a_list_of_texts():
    assert token_counter("gpt-4o", text=["hello world", "Hello, world!"]) == 2 + 4


def test_it_counts_special_token_text_as_plain_text():
    assert token_counter("gpt-4o", text="<|endoftext|>") == 7


def test_it_picks_the_encoding_tiktoken_names_for_the_model():
    assert encoding_for_model("gpt-4o-mini").name == "o200k_base"
    assert encoding_for_model("o3-mini").name == "o200k_base"
    assert encoding_for_model("gpt-4").name == "cl100k_base"
    assert encoding_for_model("text-embedding-3-small").name == "cl100k_base"


def test_it_ignores_a_provider_prefix():
    assert encoding_for_model("azure/gpt-4o").name == "o200k_base"
    assert encoding_for_model("openrouter/openai/gpt-4o").name == "o200k_base"


def test_an_unknown_model_falls_back_to_cl100k():
    assert encoding_for_model("claude-sonnet-4-5").name == "cl100k_base"
    assert encoding_for_model("").name == "cl100k_base"
    # Japanese splits differently: 4 tokens in cl100k_base, 2 in o200k_base.
    assert token_counter("claude-sonnet-4-5", text="こんにちは世界") == 4
    assert token_counter("gpt-4o", text="こんにちは世界") == 2


def test_a_model_on_an_encoding_we_do_not_ship_falls_back_to_cl100k():
    # tiktoken maps text-davinci-003 to p50k_base, which is not bundled.
    assert encoding_for_model("text-davinci-003").name == "cl100k_base"


def test_it_counts_a_conversation_with_openais_chat_formula():
    # system: 3 + 1 + 4 = 8; user: 3 + 1 + 7 + (1 + 2 for the name) = 14; assistant: 3 + 1 + 7 = 11;
    # reply priming: 3.
    assert token_counter("gpt-4o", messages=CONVERSATION) == 8 + 14 + 11 + 3
    assert token_counter("gpt-4", messages=CONVERSATION) == 36


def test_it_counts_text_parts_and_a_fixed_estimate_per_image():
    def message(detail):
        image = {"url": "https://example.test/cat.png", "detail": detail}
        content = [{"type": "text", "text": "Describe this."}, {"type": "image_url", "image_url": image}]
        return [{"role": "user", "content": content}]

    # 3 + 1 (role) + 3 (text) + image + 3 (priming)
    assert token_counter("gpt-4o", messages=message("low")) == 3 + 1 + 3 + 85 + 3
    assert token_counter("gpt-4o", messages=message("high")) == 3 + 1 + 3 + 765 + 3
    assert token_counter("gpt-4o", messages=message("auto")) == 3 + 1 + 3 + 765 + 3


def test_it_counts_tool_calls_and_tool_results():
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "22C and sunny"},
    ]
    # assistant: 3 + 1 + 2 (name) + 5 (arguments) = 11; tool: 3 + 1 + 4 = 8; priming: 3.
    assert token_counter("gpt-4o", messages=messages) == 11 + 8 + 3


def test_it_adds_the_tool_definitions_as_json():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    without_tools = token_counter("gpt-4o", messages=CONVERSATION)
    tools_tokens = len(get_encoding("o200k_base").encode(orjson.dumps(tools).decode()))
    assert tools_tokens > 20
    assert token_counter("gpt-4o", messages=CONVERSATION, tools=tools) == without_tools + tools_tokens


def test_it_needs_messages_or_text():
    with pytest.raises(BadRequestError):
        token_counter("gpt-4o")


def test_it_counts_offline_from_the_bundled_files(tmp_path):
    result = run_offline(
        """
        from providers.tokens import token_counter
        assert token_counter("gpt-4o", text="hello world") == 2
        assert token_counter("gpt-4", text="hello world") == 2
        print("ok")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_bundled_encodings_match_tiktokens_own(tmp_path):
    # Give tiktoken its own cache, named as it expects (sha1 of the download URL), so it runs offline too.
    for name in ("cl100k_base", "o200k_base"):
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        bundled = resources.files("providers").joinpath("data", f"{name}.tiktoken")
        with resources.as_file(bundled) as path:
            shutil.copyfile(path, tmp_path / hashlib.sha1(url.encode()).hexdigest())
    result = run_offline(
        """
        import tiktoken
        from providers.tokens import get_encoding
        sample = "Héllo wörld! こんにちは 123456 <tag> don't\\n\\n  def f(x): return x**2"
        for name in ("cl100k_base", "o200k_base"):
            theirs, ours = tiktoken.get_encoding(name), get_encoding(name)
            assert ours.encode(sample) == theirs.encode(sample), name
            assert ours.special_tokens_set == theirs.special_tokens_set, name
            assert ours.n_vocab == theirs.n_vocab, name
        print("ok")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _scrambled_text(seed: int, length: int) -> str:
    """Return text drawn from every script a prompt may hold: ASCII, accents, CJK, emoji, controls."""
    alphabet = "abc XYZ 019 .,;!?\n\t  éøß жщ ありがとう 汉字 한국어 🙂🚀👩‍💻 \u200b\r\n{}[]\"'<|endoftext|>"
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


BOUND_CASES = {
    "english": [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 40}],
    "one long word": [{"role": "user", "content": "a" * 5000}],
    "digits": [{"role": "user", "content": "31415926535897932384626433832795" * 20}],
    "whitespace": [{"role": "user", "content": " \n\n\t   \r\n" * 100}],
    "japanese and chinese": [{"role": "user", "content": "こんにちは世界、我能吞下玻璃而不伤身体。" * 30}],
    "emoji": [{"role": "user", "content": "🙂🚀👩‍💻🏳️‍🌈" * 50}],
    "code": [{"role": "user", "content": "def f(x):\n    return {'k': [x ** 2 for x in range(10)]}\n" * 30}],
    "special token text": [{"role": "user", "content": "<|endoftext|><|fim_prefix|><|endofprompt|>" * 20}],
    "a conversation": CONVERSATION,
    "empty content": [{"role": "assistant", "content": ""}, {"role": "user", "content": None}],
    "text and images": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe these."},
                {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/b.png"}},
            ],
        }
    ],
    "tool calls": [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "1", "function": {"name": "get_weather", "arguments": '{"city":"東京"}'}}],
        },
        {"role": "tool", "tool_call_id": "1", "content": "22C"},
    ],
    **{f"scrambled {seed}": [{"role": "user", "content": _scrambled_text(seed, 3000)}] for seed in range(8)},
}


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o", "claude-sonnet-4-5"])
@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_the_upper_bound_is_never_below_the_count(model, case):
    messages = BOUND_CASES[case]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]

    assert token_upper_bound(messages=messages) >= token_counter(model, messages=messages)
    assert token_upper_bound(messages=messages, tools=tools) >= token_counter(
        model, messages=messages, tools=tools
    )
    texts = [part["content"] for part in messages if isinstance(part.get("content"), str)]
    assert token_upper_bound(text=texts) >= token_counter(model, text=texts)


def test_the_upper_bound_of_a_text_is_its_utf8_size():
    assert token_upper_bound(text="hello") == 5
    assert token_upper_bound(text=["héllo", "🙂"]) == 6 + 4
    assert token_upper_bound(messages=[{"role": "user", "content": "hi"}]) == 3 + 4 + 2 + 3
