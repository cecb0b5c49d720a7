from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class OpsConfig(AppConfig):
    """The console's templates, static files and date formats."""

    name = "k8sdm.ops"
    label = "ops"
    verbose_name = "Operations console"


class OpsAdminConfig(AdminConfig):
    """django.contrib.admin with the operations site as the default site, so every
    `@admin.register` in the project lands on it and looks the same."""

    default_site = "k8sdm.ops.site.OpsAdminSite"
