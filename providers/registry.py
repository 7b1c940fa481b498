"""Every provider the library can call, declared as data.

A provider is an adapter module (the four pure functions of ``providers.adapters``) plus where it
lives and how it authenticates. OpenAI-compatible providers reuse the OpenAI adapter and declare only
their differences: base URL, key variable, and the parameters they reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import Literal

from providers.exceptions import BadRequestError
from providers.upstream import Operation

Auth = Literal["bearer", "api-key", "x-api-key", "none"]

CHAT_ONLY: frozenset[Operation] = frozenset({"chat"})
CHAT_AND_EMBEDDINGS: frozenset[Operation] = frozenset({"chat", "embedding"})
ALL_OPERATIONS: frozenset[Operation] = frozenset({"chat", "text_completion", "embedding", "image_generation"})


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How to reach and authenticate against one provider."""

    name: str
    adapter_module: str
    api_base: str | None
    api_key_env: tuple[str, ...] = ()
    api_base_env: tuple[str, ...] = ()
    api_version_env: tuple[str, ...] = ()
    auth: Auth = "bearer"
    operations: frozenset[Operation] = CHAT_ONLY
    excluded_params: frozenset[str] = frozenset()
    requires_api_key: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def adapter(self) -> ModuleType:
        """Return the adapter module (imported on first use, then cached by Python)."""
        return import_module(self.adapter_module)


def _compatible(
    name: str,
    api_base: str | None,
    key_env: str | None,
    *,
    excluded: tuple[str, ...] = (),
    operations: frozenset[Operation] = CHAT_ONLY,
    base_env: str | None = None,
    requires_api_key: bool = True,
) -> ProviderSpec:
    return ProviderSpec(
        name=name,
        adapter_module="providers.adapters.openai",
        api_base=api_base,
        api_key_env=(key_env,) if key_env else (),
        api_base_env=(base_env,) if base_env else (),
        operations=operations,
        excluded_params=frozenset(excluded),
        requires_api_key=requires_api_key,
    )


# Parameters OpenAI accepts that most "compatible" servers reject with a 400.
_NO_LOGIT_BIAS = ("logit_bias",)
_NO_PENALTIES_OR_LOGPROBS = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
)

_SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai",
        adapter_module="providers.adapters.openai",
        api_base="https://api.openai.com/v1",
        api_key_env=("OPENAI_API_KEY",),
        api_base_env=("OPENAI_BASE_URL", "OPENAI_API_BASE"),
        operations=ALL_OPERATIONS,
    ),
    ProviderSpec(
        name="azure",
        adapter_module="providers.adapters.azure",
        api_base=None,
        api_key_env=("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
        api_base_env=("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"),
        api_version_env=("AZURE_API_VERSION", "OPENAI_API_VERSION"),
        auth="api-key",
        operations=ALL_OPERATIONS,
    ),
    ProviderSpec(
        name="anthropic",
        adapter_module="providers.adapters.anthropic",
        api_base="https://api.anthropic.com",
        api_key_env=("ANTHROPIC_API_KEY",),
        api_base_env=("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
        auth="x-api-key",
    ),
    ProviderSpec(
        name="mock",
        adapter_module="providers.adapters.mock",
        api_base=None,
        auth="none",
        operations=ALL_OPERATIONS,
        requires_api_key=False,
    ),
    # OpenAI-compatible providers: https://docs.litellm.ai/docs/providers lists their endpoints.
    _compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", excluded=_NO_LOGIT_BIAS),
    _compatible(
        "together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY", operations=CHAT_AND_EMBEDDINGS
    ),
    _compatible(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
        operations=CHAT_AND_EMBEDDINGS,
    ),
    _compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", excluded=_NO_LOGIT_BIAS),
    _compatible(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        excluded=_NO_PENALTIES_OR_LOGPROBS,
        operations=CHAT_AND_EMBEDDINGS,
    ),
    _compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY", excluded=_NO_LOGIT_BIAS),
    _compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    _compatible(
        "perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITYAI_API_KEY",
        excluded=("logit_bias", "n", "tools", "tool_choice", "parallel_tool_calls"),
    ),
    _compatible(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        operations=CHAT_AND_EMBEDDINGS,
    ),
    _compatible(
        "cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", excluded=_NO_PENALTIES_OR_LOGPROBS
    ),
    _compatible(
        "nvidia_nim",
        "https://integrate.api.nvidia.com/v1",
        "NVIDIA_NIM_API_KEY",
        operations=CHAT_AND_EMBEDDINGS,
    ),
    _compatible(
        "sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", excluded=_NO_PENALTIES_OR_LOGPROBS
    ),
    _compatible(
        "hosted_vllm",
        None,
        "HOSTED_VLLM_API_KEY",
        base_env="HOSTED_VLLM_API_BASE",
        operations=ALL_OPERATIONS,
        requires_api_key=False,
    ),
    _compatible(
        "lm_studio",
        "http://localhost:1234/v1",
        "LM_STUDIO_API_KEY",
        base_env="LM_STUDIO_API_BASE",
        operations=CHAT_AND_EMBEDDINGS,
        requires_api_key=False,
    ),
    _compatible(
        "ollama_chat",
        "http://localhost:11434/v1",
        None,
        base_env="OLLAMA_API_BASE",
        operations=CHAT_AND_EMBEDDINGS,
        requires_api_key=False,
    ),
    _compatible("anyscale", "https://api.endpoints.anyscale.com/v1", "ANYSCALE_API_KEY"),
    _compatible("github", "https://models.inference.ai.azure.com", "GITHUB_API_KEY"),
    _compatible(
        "nebius", "https://api.studio.nebius.ai/v1", "NEBIUS_API_KEY", operations=CHAT_AND_EMBEDDINGS
    ),
    _compatible("hyperbolic", "https://api.hyperbolic.xyz/v1", "HYPERBOLIC_API_KEY"),
    _compatible("novita", "https://api.novita.ai/v3/openai", "NOVITA_API_KEY"),
    _compatible("featherless_ai", "https://api.featherless.ai/v1", "FEATHERLESS_AI_API_KEY"),
    _compatible("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", excluded=_NO_LOGIT_BIAS),
    _compatible("dashscope", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY"),
    _compatible("lambda_ai", "https://api.lambda.ai/v1", "LAMBDA_API_KEY"),
    _compatible("volcengine", "https://ark.cn-beijing.volces.com/api/v3", "VOLCENGINE_API_KEY"),
    _compatible(
        "llamafile",
        "http://127.0.0.1:8080/v1",
        "LLAMAFILE_API_KEY",
        base_env="LLAMAFILE_API_BASE",
        requires_api_key=False,
    ),
    _compatible(
        "openai_like",
        None,
        "OPENAI_LIKE_API_KEY",
        base_env="OPENAI_LIKE_API_BASE",
        operations=ALL_OPERATIONS,
        requires_api_key=False,
    ),
)

PROVIDERS: dict[str, ProviderSpec] = {spec.name: spec for spec in _SPECS}

# Every environment variable a provider's credentials are read from (OPENAI_API_KEY, AZURE_API_BASE...).
PROVIDER_ENV_NAMES: frozenset[str] = frozenset(
    name for spec in _SPECS for name in (*spec.api_key_env, *spec.api_base_env, *spec.api_version_env)
)

# Bare model names that imply a provider (LiteLLM resolves these the same way).
_OPENAI_PREFIXES = (
    "gpt-",
    "chatgpt-",
    "o1",
    "o3",
    "o4",
    "text-embedding-",
    "dall-e-",
    "gpt-image-",
    "davinci-",
    "babbage-",
    "omni-moderation",
    "codex-",
)
_ANTHROPIC_PREFIXES = ("claude-",)


def provider_get(name: str) -> ProviderSpec:
    """Return the provider declared under ``name`` or raise BadRequestError listing the known ones."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise BadRequestError(
            f"Unknown provider '{name}'. Known providers: {', '.join(sorted(PROVIDERS))}.",
            provider=name,
            param="model",
            code="unknown_provider",
        ) from None


def model_resolve(model: str, custom_llm_provider: str | None = None) -> tuple[ProviderSpec, str]:
    """Return the provider and the provider's model id for a ``provider/model`` or bare model name."""
    if not model or not isinstance(model, str):
        raise BadRequestError("'model' is required and must be a string.", param="model")
    if custom_llm_provider:
        return provider_get(custom_llm_provider), model
    prefix, slash, rest = model.partition("/")
    if slash and prefix in PROVIDERS:
        return PROVIDERS[prefix], rest
    if model.startswith(_OPENAI_PREFIXES):
        return PROVIDERS["openai"], model
    if model.startswith(_ANTHROPIC_PREFIXES):
        return PROVIDERS["anthropic"], model
    raise BadRequestError(
        f"LLM provider not given for model '{model}'. Pass it as 'provider/model' "
        f"(for example 'openai/{model}'); known providers: {', '.join(sorted(PROVIDERS))}.",
        model=model,
        param="model",
        code="unknown_provider",
    )
