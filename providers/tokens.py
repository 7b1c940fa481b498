"""Count tokens offline, for budget holds, rate limits and usage when a provider reports none.

The BPE rank files of the two encodings current OpenAI models use ship as package data and are loaded
from disk (their sha256 is pinned), so counting never touches the network. Models whose tokenizer we
do not ship, Claude, Gemini and open models included, are counted with ``cl100k_base``: an estimate,
usually within a few percent on English text.
"""

from __future__ import annotations

import base64
import functools
from importlib import resources

import orjson
import tiktoken
import tiktoken.load
import tiktoken.model

from providers.exceptions import BadRequestError

FALLBACK_ENCODING = "cl100k_base"

# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14.0), so the encodings built from our files
# are exactly tiktoken's own.
_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"
_ENCODINGS = {
    "cl100k_base": {
        "file": "cl100k_base.tiktoken",
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": (
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        "special_tokens": {
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    },
    "o200k_base": {
        "file": "o200k_base.tiktoken",
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    },
}
# o200k_harmony (gpt-oss) is o200k_base plus chat-format special tokens; plain text counts the same.
_SAME_RANKS = {"o200k_harmony": "o200k_base"}

# OpenAI's chat format overhead: https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3  # <|start|>assistant<|message|>
# Image parts are counted without fetching the image. Low detail is a flat 85 tokens; for high or auto
# detail we assume a 1024x1024 image, which OpenAI bills as 85 + 4 tiles x 170 = 765 tokens.
# https://platform.openai.com/docs/guides/images-vision#calculating-costs
IMAGE_TOKENS_LOW_DETAIL = 85
IMAGE_TOKENS_HIGH_DETAIL = 765


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """Return one of the shipped encodings (``cl100k_base`` or ``o200k_base``), loaded from disk once."""
    spec = _ENCODINGS[name]
    contents = resources.files("providers").joinpath("data", spec["file"]).read_bytes()
    if not tiktoken.load.check_hash(contents, spec["sha256"]):
        raise RuntimeError(f"The bundled tokenizer file {spec['file']} is corrupt (sha256 mismatch).")
    # The .tiktoken format: one "<base64 token> <rank>" per line. Parsed here rather than through
    # load_tiktoken_bpe, which copies every file it reads into a cache directory under /tmp.
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in contents.splitlines() if line)
    }
    return tiktoken.Encoding(
        name, pat_str=spec["pat_str"], mergeable_ranks=ranks, special_tokens=spec["special_tokens"]
    )


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """Return the tokenizer for a model, or ``cl100k_base`` when we do not ship its own.

    A ``provider/`` prefix is ignored (``azure/gpt-4o`` uses ``o200k_base``). For models tiktoken does
    not know, e.g. Claude or Gemini, the ``cl100k_base`` count is an estimate.
    """
    return get_encoding(_encoding_name(model))


@functools.lru_cache(maxsize=4096)
def _encoding_name(model: str) -> str:
    # Cached: tiktoken tries every known model prefix in turn, which took longer than counting a
    # short prompt.
    bare = model.rsplit("/", 1)[-1]
    try:
        name = tiktoken.model.encoding_name_for_model(bare)
    except KeyError:
        name = FALLBACK_ENCODING
    name = _SAME_RANKS.get(name, name)
    return name if name in _ENCODINGS else FALLBACK_ENCODING


def _text_tokens(encoding: tiktoken.Encoding, text: str) -> int:
    # encode_ordinary: "<|endoftext|>" typed by a user is text, not a special token.
    return len(encoding.encode_ordinary(text))


def _content_tokens(encoding: tiktoken.Encoding, content: object) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _text_tokens(encoding, content)
    count = 0
    for part in content if isinstance(content, list) else ():
        kind = part.get("type")
        if kind == "text":
            count += _text_tokens(encoding, part.get("text") or "")
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, dict) else None
            count += IMAGE_TOKENS_LOW_DETAIL if detail == "low" else IMAGE_TOKENS_HIGH_DETAIL
        # Audio and file parts are not counted: their size is unknown without decoding them.
    return count


def _message_tokens(encoding: tiktoken.Encoding, message: dict) -> int:
    count = TOKENS_PER_MESSAGE + _text_tokens(encoding, message.get("role") or "")
    count += _content_tokens(encoding, message.get("content"))
    if message.get("name"):
        count += TOKENS_PER_NAME + _text_tokens(encoding, message["name"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        count += _text_tokens(encoding, function.get("name") or "")
        count += _text_tokens(encoding, function.get("arguments") or "")
    return count


def token_counter(
    model: str = "",
    messages: list[dict] | None = None,
    text: str | list[str] | None = None,
    tools: list | None = None,
) -> int:
    """Return the number of prompt tokens for ``messages`` and/or ``text``, plus ``tools``.

    Messages follow OpenAI's documented chat formula: 3 tokens per message plus its role and content,
    1 more per ``name``, 3 to prime the reply. Text parts and tool calls (function name and arguments)
    are counted exactly; image parts and tool definitions (the tools list as JSON) are estimates.
    Raise ``BadRequestError`` if neither ``messages`` nor ``text`` is given.
    """
    if messages is None and text is None:
        raise BadRequestError("token_counter needs messages or text")
    encoding = encoding_for_model(model)
    count = 0
    if messages is not None:
        count += sum(_message_tokens(encoding, message) for message in messages) + REPLY_PRIMING_TOKENS
    if text is not None:
        texts = [text] if isinstance(text, str) else text
        count += sum(_text_tokens(encoding, item) for item in texts)
    if tools:
        count += _text_tokens(encoding, orjson.dumps(tools).decode())
    return count


def _text_bytes(text: object) -> int:
    """Return the UTF-8 size of a text: no byte-level BPE token is shorter than one byte."""
    if isinstance(text, str):
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if text is None:
        return 0
    return len(orjson.dumps(text, option=orjson.OPT_NON_STR_KEYS, default=str))  # not a string: its JSON


def _content_bound(content: object) -> int:
    if not isinstance(content, list):
        return _text_bytes(content)
    count = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            count += _text_bytes(part.get("text"))
        elif kind == "image_url":
            count += max(IMAGE_TOKENS_LOW_DETAIL, IMAGE_TOKENS_HIGH_DETAIL)
        elif kind is None:
            count += _text_bytes(part)
    return count


def _message_bound(message: object) -> int:
    if not isinstance(message, dict):
        return TOKENS_PER_MESSAGE + _text_bytes(message)
    count = TOKENS_PER_MESSAGE + _text_bytes(message.get("role")) + _content_bound(message.get("content"))
    if message.get("name"):
        count += TOKENS_PER_NAME + _text_bytes(message["name"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            count += _text_bytes(function.get("name")) + _text_bytes(function.get("arguments"))
    return count


def token_upper_bound(
    messages: list | None = None, text: str | list[str] | None = None, tools: list | None = None
) -> int:
    """Return a number of prompt tokens that ``token_counter`` never exceeds, for any model, cheaply.

    ``token_counter``'s formula with every text's UTF-8 size in place of its token count: the shipped
    encodings are byte-level BPE, where each token stands for one byte or more, so a text of n bytes
    is at most n tokens. Reading sizes costs microseconds where tokenizing a long prompt costs
    milliseconds; the bound is about four times the count on English text.
    """
    count = 0
    if messages is not None:
        count += sum(_message_bound(message) for message in messages) + REPLY_PRIMING_TOKENS
    if text is not None:
        count += sum(_text_bytes(item) for item in ([text] if isinstance(text, str) else text))
    if tools:
        count += len(orjson.dumps(tools))
    return count
