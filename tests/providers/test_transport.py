"""The one module that does network I/O, over loopback to the fake upstream."""

from __future__ import annotations

from providers import transport
from providers.upstream import ResolvedDeployment, UpstreamRequest
from tests.fakes.openai_responses import chat_completion
from tests.fakes.upstream import Reply


def _request(upstream, key: str) -> UpstreamRequest:
    # By name: a cookie jar keeps no cookie from a bare IP address.
    return UpstreamRequest(
        method="POST",
        url=f"http://localhost:{upstream.port}/v1/chat/completions",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        body=b'{"model": "gpt-4o-mini", "messages": []}',
    )


async def test_a_cookie_an_upstream_sets_is_never_sent_with_another_request(upstream):
    deployment = ResolvedDeployment(provider="openai", model="gpt-4o-mini", api_base=upstream.url)
    upstream.enqueue(
        Reply(json=chat_completion("gpt-4o-mini"), headers={"Set-Cookie": "session=caller-one; Path=/"})
    )

    first = await transport.asend(_request(upstream, "sk-caller-one"), deployment)
    second = await transport.asend(_request(upstream, "sk-caller-two"), deployment)

    assert (first.status, second.status) == (200, 200)
    assert first.headers["Set-Cookie"].startswith("session=caller-one")
    assert "Cookie" not in upstream.last.headers
    await transport.aclose()
