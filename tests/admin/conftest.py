import pytest

from tests.api.conftest import unreachable_nats  # noqa: F401 - a fixture, used by name


@pytest.fixture
def staff(admin_client):
    """A superuser's browser session (Django's test client, logged in)."""
    return admin_client


@pytest.fixture
def viewer(client, django_user_model):
    """A staff user who may view deployments and requests, and do nothing else."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="a-long-viewer-password-1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=[
        "view_deployment", "view_deploymentrequest", "view_user"]))
    client.force_login(user)
    return client
