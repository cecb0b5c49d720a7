"""Admin logins are throttled (django-axes): repeated failures lock that username from that address."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-staff-password-1"


@pytest.fixture
def anna(django_user_model):
    return django_user_model.objects.create_superuser("anna", "anna@example.com", PASSWORD)


def login(client, username, password, addr="10.1.2.3"):
    return client.post(reverse("admin:login"), {"username": username, "password": password,
                                                "next": reverse("admin:index")}, REMOTE_ADDR=addr)


def test_after_five_failures_even_the_right_password_is_refused(client, anna, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        response = login(client, "anna", "wrong")
        assert response.status_code == 200 and "Please enter the correct username and password" in response.text
    locked = login(client, "anna", "wrong")
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    response = login(client, "anna", PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # still sent to the login page


def test_the_lock_is_for_that_username_from_that_address_only(client, anna, django_user_model):
    django_user_model.objects.create_superuser("ben", "ben@example.com", PASSWORD)
    for _ in range(5):
        login(client, "anna", "wrong")
    assert login(client, "anna", PASSWORD, addr="10.9.9.9").status_code == 302  # anna elsewhere
    client.logout()
    assert login(client, "ben", PASSWORD).status_code == 302  # another account from the same address


def test_a_successful_login_clears_earlier_failures(client, anna):
    for _ in range(4):
        login(client, "anna", "wrong")
    assert login(client, "anna", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert login(client, "anna", "wrong").status_code == 200
    assert login(client, "anna", PASSWORD).status_code == 302
