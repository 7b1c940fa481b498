"""An alias renames a model group, it never grants one: access is decided on the group a request reaches.

Team A may use ``gpt-a``, team B ``gpt-b``; each group's deployment has its own provider key, so the
``Authorization`` header the fake upstream saw tells whose credential a request used. The aliases
pointing from team A's keys and team into ``gpt-b`` are written straight to the database, as they
could be before the management API and the admin refused them: an alias named like a model the
team may use (``gpt-a`` on the attacker's key), and alias names listed in the team's models as
LiteLLM users list them.
"""

import openai
import pytest

from tests.fakes.openai_responses import openai_error

TEAM_A_PROVIDER_KEY = "sk-provider-team-a"
TEAM_B_PROVIDER_KEY = "sk-provider-team-b"
MESSAGES = [{"role": "user", "content": "Hello"}]

SEED = """
from llm_gateway.models import GatewaySettings, Team
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
base = {base!r}
deployment_create(model_id="team-a-deployment", model_name="gpt-a", provider="openai", model="model-a",
                  api_base=base + "/team-a/v1", api_key={team_a_key!r})
deployment_create(model_id="team-b-deployment", model_name="gpt-b", provider="openai", model="model-b",
                  api_base=base + "/team-b/v1", api_key={team_b_key!r})
team_a = Team.objects.create(team_alias="team-a", models=["gpt-a", "team-alias-b", "router-alias-b"],
                             model_aliases={{"team-alias-b": "gpt-b", "team-alias-a": "gpt-a"}})
Team.objects.create(team_alias="team-b", models=["gpt-b"])
_, secret = virtual_key_create(key_alias="team-a-key", team=team_a, aliases={{"fast": "gpt-a"}})
_, attacker = virtual_key_create(key_alias="attacker", team=team_a, aliases={{"gpt-a": "gpt-b"}})
GatewaySettings.objects.update_or_create(pk=1, defaults={{"router_settings": {{
    "model_group_alias": {{"router-alias-b": "gpt-b", "router-alias-a": "gpt-a",
                          "hidden-a": {{"model": "gpt-a", "hidden": True}}}},
    "fallbacks": [{{"gpt-a": ["gpt-b"]}}],
}}}})
print(secret, attacker)
"""


@pytest.fixture(scope="module")
def secrets(gateway, _upstream_server) -> dict[str, str]:
    """Return the secrets of team A's two keys: the one used as intended, and the attacker's."""
    printed = gateway.run_python(
        SEED.format(base=_upstream_server.url, team_a_key=TEAM_A_PROVIDER_KEY, team_b_key=TEAM_B_PROVIDER_KEY)
    )
    return dict(zip(("team_a", "attacker"), printed.split(), strict=True))


@pytest.fixture
def clients(gateway, secrets):
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secrets["team_a"], max_retries=0) as team_a,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secrets["attacker"], max_retries=0) as attacker,
    ):
        yield {"team_a": team_a, "attacker": attacker}


@pytest.fixture
def team_a(clients):
    return clients["team_a"]


@pytest.fixture
def master(gateway, master_key):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=master_key, max_retries=0) as client:
        yield client


def credentials_used(upstream) -> list[str]:
    return [request.headers.get("Authorization") for request in upstream.requests]


@pytest.mark.parametrize(
    ("key", "alias"), [("attacker", "gpt-a"), ("team_a", "team-alias-b"), ("team_a", "router-alias-b")]
)
def test_it_refuses_an_alias_into_another_teams_model_group(clients, upstream, key, alias):
    with pytest.raises(openai.PermissionDeniedError) as raised:
        clients[key].chat.completions.create(model=alias, messages=MESSAGES)

    assert raised.value.status_code == 403
    assert raised.value.code == "model_not_allowed"
    assert raised.value.body["param"] == "model"
    assert upstream.requests == []  # team B's deployment (and its provider key) was never called


@pytest.mark.parametrize("name", ["gpt-a", "fast", "team-alias-a", "router-alias-a", "hidden-a"])
def test_an_alias_within_the_teams_models_is_served_with_the_teams_credential(team_a, upstream, name):
    completion = team_a.chat.completions.create(model=name, messages=MESSAGES)

    assert completion.model == "model-a"
    assert credentials_used(upstream) == [f"Bearer {TEAM_A_PROVIDER_KEY}"]


def test_it_skips_a_fallback_into_a_group_the_key_may_not_use(team_a, upstream):
    upstream.override("^/team-a/", lambda request: openai_error(500, "broken", "server_error"))

    with pytest.raises(openai.InternalServerError):
        team_a.chat.completions.create(model="gpt-a", messages=MESSAGES)

    assert credentials_used(upstream) == [f"Bearer {TEAM_A_PROVIDER_KEY}"]


def test_the_same_fallback_is_taken_for_a_caller_who_may_use_it(master, upstream):
    upstream.override("^/team-a/", lambda request: openai_error(500, "broken", "server_error"))

    completion = master.chat.completions.create(model="gpt-a", messages=MESSAGES)

    assert completion.model == "model-b"
    assert credentials_used(upstream) == [f"Bearer {TEAM_A_PROVIDER_KEY}", f"Bearer {TEAM_B_PROVIDER_KEY}"]


def test_models_lists_only_groups_and_aliases_the_key_may_use(clients):
    team_a, attacker = clients["team_a"], clients["attacker"]

    assert sorted(model.id for model in team_a.models.list()) == [
        "fast",
        "gpt-a",
        "router-alias-a",
        "team-alias-a",
    ]
    assert team_a.models.retrieve("fast").id == "fast"
    for name in ("gpt-b", "team-alias-b", "router-alias-b", "hidden-a"):
        with pytest.raises(openai.NotFoundError):
            team_a.models.retrieve(name)
    # The attacker's "gpt-a" means gpt-b, which is not theirs: the name is not listed.
    assert sorted(model.id for model in attacker.models.list()) == ["router-alias-a", "team-alias-a"]


def test_models_lists_every_group_and_visible_alias_for_the_master_key(master):
    listed = sorted(model.id for model in master.models.list())

    assert listed == ["gpt-a", "gpt-b", "router-alias-a", "router-alias-b"]
