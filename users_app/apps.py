from django.apps import AppConfig


class UsersAppConfig(AppConfig):
    name = "users_app"
    verbose_name = "Users"

    def ready(self):
        from k8sdm import checks  # noqa: F401 - registers the authentication and policy checks
