"""The spend APIs: LiteLLM's spend logs, spend report and daily activity, and our /key/usage."""
