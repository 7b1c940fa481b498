"""GET / and GET /health/liveliness."""

import pytest


@pytest.mark.parametrize("path", ["/", "/health/liveliness"])
async def test_it_reports_healthy(async_client, path):
    response = await async_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "healthy"}


async def test_it_refuses_a_post(async_client):
    response = await async_client.post("/health/liveliness")

    assert response.status_code == 405
