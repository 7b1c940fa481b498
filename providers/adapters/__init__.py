"""One module per provider, each a pure translator with the same functions.

Four translate calls:

    build_request(operation, body, deployment, spec) -> UpstreamRequest
        ``body`` is the OpenAI-format request without ``model`` and without the library's own options
        (retries, fallbacks, credentials...). Apply the module's ``PARAMS`` table with
        ``providers.params.translate_params``; use ``deployment.model`` as the provider's model id.
    parse_response(operation, payload, deployment) -> dict
        The provider's decoded JSON body in, an OpenAI-format response dict out.
    parse_stream_event(operation, state, event) -> list[dict]
        One SSE event in, zero or more OpenAI-format chunk dicts out. Put usage on ``state.usage``
        (never emit a usage-only chunk) and set ``state.finished`` on the terminal event.
    map_error(status, payload, text, headers, deployment) -> APIError
        The provider's error answer in (``payload`` is the decoded JSON or None), an exception out.

Two translate the model list, the cheapest authenticated call (health checks use it where a real
call costs money, as image generation does):

    build_models_request(deployment, spec) -> UpstreamRequest
        The request that lists the models the credential may use.
    parse_models_response(payload, deployment) -> dict
        The provider's list in, OpenAI's ``{"object": "list", "data": [{"id": ..., "object": "model"}]}``
        out.

Adapters touch no socket, clock, environment variable or Django; the call engine does the I/O.
"""
