"""bootstrap_admin_ensure(): the admin user and the password shown at every start."""

import stat

import pytest
from django.contrib.auth import get_user_model

from llm_gateway.services.bootstrap import bootstrap_admin_ensure

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
