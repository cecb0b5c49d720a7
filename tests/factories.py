"""factory-boy factories, one per model."""

import hashlib
import json

import factory
from factory.django import DjangoModelFactory

from deployments_app.models import Deployment, DeploymentStatus
from deployments_app.services import asks_of
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus, Revision, RevisionKind
from users_app.models import User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    user_external_id = factory.Sequence(lambda n: f"user-{n}@example.com")


class DeploymentFactory(DjangoModelFactory):
    class Meta:
        model = Deployment

    identifier = factory.Sequence(lambda n: f"app-{n}")
    namespace = "default"
    owner = factory.SubFactory(UserFactory)
    status = DeploymentStatus.INITIATED
    desired_config = factory.LazyAttribute(
        lambda o: {"identifier": o.identifier, "namespace": o.namespace, "image": "nginx:1.27", "replicas": 1}
    )
    # Kept with desired_config, as the services do (the quotas add them up).
    ask_replicas = factory.LazyAttribute(lambda o: asks_of(o.desired_config)["ask_replicas"])
    ask_cpu = factory.LazyAttribute(lambda o: asks_of(o.desired_config)["ask_cpu"])
    ask_memory = factory.LazyAttribute(lambda o: asks_of(o.desired_config)["ask_memory"])


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class DeploymentRequestFactory(DjangoModelFactory):
    class Meta:
        model = DeploymentRequest

    request_id = factory.Sequence(lambda n: f"req-{n}")
    user = factory.SubFactory(UserFactory)
    deployment = factory.SubFactory(DeploymentFactory, owner=factory.SelfAttribute("..user"))
    identifier = factory.SelfAttribute("deployment.identifier")
    namespace = factory.SelfAttribute("deployment.namespace")
    action = RequestAction.CREATE
    status = RequestStatus.CREATED
    payload = factory.SelfAttribute("deployment.desired_config")
    config = factory.SelfAttribute("deployment.desired_config")
    payload_hash = factory.LazyAttribute(lambda o: _hash(o.payload))


class RevisionFactory(DjangoModelFactory):
    """A revision made by a successful request (give `request`, or one is made)."""

    class Meta:
        model = Revision

    request = factory.SubFactory(DeploymentRequestFactory, status=RequestStatus.SUCCESS,
                                 finished_at=factory.Faker("date_time", tzinfo=__import__("datetime").timezone.utc))
    deployment = factory.SelfAttribute("request.deployment")
    user = factory.SelfAttribute("request.user")
    number = factory.Sequence(lambda n: n + 1)
    kind = RevisionKind.UPDATE
    config = factory.SelfAttribute("request.config")
