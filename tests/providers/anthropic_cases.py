"""What the Anthropic adapter tests share: the deployment, a prompt, a tool in both formats."""

from providers.registry import PROVIDERS
from providers.upstream import ResolvedDeployment

SPEC = PROVIDERS["anthropic"]
MODEL = "claude-3-5-haiku-20241022"
DEPLOYMENT = ResolvedDeployment(
    provider="anthropic", model=MODEL, api_base="https://api.anthropic.com", api_key="sk-ant-test"
)
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Get the weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
