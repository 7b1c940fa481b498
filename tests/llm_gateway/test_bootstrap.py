"""bootstrap_admin_ensure() and bootstrap_demo_ensure(): what the run command shows at every start."""

import stat

import pytest
from django.contrib.auth import get_user_model

from llm_gateway.crypto import virtual_key_hash
from llm_gateway.models import Deployment, Team, VirtualKey
from llm_gateway.services.bootstrap import DEMO_REPLY, bootstrap_admin_ensure, bootstrap_demo_ensure

pytestmark = pytest.mark.django_db


def test_it_creates_a_superuser_and_saves_its_password_privately(tmp_path):
    password_file = tmp_path / "admin_password"

    credentials = bootstrap_admin_ensure(password_file=password_file)

    user = get_user_model().objects.get(username="admin")
    assert credentials.created
    assert user.is_superuser and user.is_staff
    assert user.check_password(credentials.password)
    assert password_file.read_text().strip() == credentials.password
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


def test_it_returns_the_saved_password_on_later_starts(tmp_path):
    password_file = tmp_path / "admin_password"
    first = bootstrap_admin_ensure(password_file=password_file)

    second = bootstrap_admin_ensure(password_file=password_file)

    assert not second.created
    assert second.password == first.password


def test_it_recreates_a_missing_user_with_the_saved_password(tmp_path):
    password_file = tmp_path / "admin_password"
    password_file.write_text("noted-by-the-operator-earlier\n")

    credentials = bootstrap_admin_ensure(password_file=password_file)

    assert credentials.created
    assert credentials.password == "noted-by-the-operator-earlier"
    assert get_user_model().objects.get(username="admin").check_password("noted-by-the-operator-earlier")


def test_it_does_not_return_a_saved_password_that_was_changed_since(tmp_path):
    password_file = tmp_path / "admin_password"
    bootstrap_admin_ensure(password_file=password_file)
    user = get_user_model().objects.get(username="admin")
    user.set_password("changed-with-changepassword")
    user.save()

    credentials = bootstrap_admin_ensure(password_file=password_file)

    assert credentials.password is None


def test_it_does_not_invent_a_password_for_an_existing_user(tmp_path):
    get_user_model().objects.create_superuser(username="admin", email="", password="made-by-hand")

    credentials = bootstrap_admin_ensure(password_file=tmp_path / "admin_password")

    assert credentials.password is None
    assert not (tmp_path / "admin_password").exists()


def test_it_seeds_the_demo_team_deployment_and_key(tmp_path):
    key_file = tmp_path / "demo_key"

    demo = bootstrap_demo_ensure(key_file=key_file)

    team = Team.objects.get(team_alias="demo")
    deployment = Deployment.objects.get(model_id="demo")
    key = VirtualKey.objects.get(key_hash=virtual_key_hash(demo.secret))
    assert (deployment.model_name, deployment.provider, deployment.model) == ("demo", "mock", "demo")
    assert deployment.extra_params == {"mock_response": DEMO_REPLY}
    assert (key.team, key.models, key.key_alias) == (team, ["demo"], "demo")
    assert demo.created and demo.secret.startswith("sk-")
    assert key_file.read_text().strip() == demo.secret
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_it_reuses_the_saved_demo_key(tmp_path):
    key_file = tmp_path / "demo_key"
    first = bootstrap_demo_ensure(key_file=key_file)

    second = bootstrap_demo_ensure(key_file=key_file)

    assert not second.created
    assert second.secret == first.secret
    assert (Team.objects.count(), Deployment.objects.count(), VirtualKey.objects.count()) == (1, 1, 1)


def test_it_recreates_a_deleted_demo_key_with_the_saved_secret(tmp_path):
    key_file = tmp_path / "demo_key"
    first = bootstrap_demo_ensure(key_file=key_file)
    VirtualKey.objects.all().delete()
    Deployment.objects.all().delete()

    second = bootstrap_demo_ensure(key_file=key_file)

    assert second.secret == first.secret
    assert VirtualKey.objects.get().key_hash == virtual_key_hash(first.secret)
    assert Deployment.objects.filter(model_id="demo").exists()


def test_it_gives_the_demo_key_a_new_secret_when_the_saved_one_is_lost(tmp_path):
    key_file = tmp_path / "demo_key"
    first = bootstrap_demo_ensure(key_file=key_file)
    key_file.unlink()

    second = bootstrap_demo_ensure(key_file=key_file)

    assert second.secret != first.secret
    assert VirtualKey.objects.get().key_hash == virtual_key_hash(second.secret)
    assert key_file.read_text().strip() == second.secret


def test_it_leaves_a_demo_deployment_an_admin_changed_alone(tmp_path):
    bootstrap_demo_ensure(key_file=tmp_path / "demo_key")
    Deployment.objects.filter(model_id="demo").update(enabled=False, rpm=5)

    bootstrap_demo_ensure(key_file=tmp_path / "demo_key")

    deployment = Deployment.objects.get(model_id="demo")
    assert (deployment.enabled, deployment.rpm) == (False, 5)
