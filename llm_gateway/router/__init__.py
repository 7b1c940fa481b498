"""The router: model groups, routing strategies, retries, fallbacks, cooldowns (``core`` ties them together).

Modules: ``settings`` (LiteLLM's router_settings), ``strategies`` (how one deployment is chosen),
``stats`` (what this process has seen of each deployment), ``cooldowns`` (shared through Redis),
``core`` (one request's route).
"""
