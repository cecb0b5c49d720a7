from django.db import migrations, models


def applied_from_desired(apps, schema_editor):
    """Rows already in the cluster: assume what was last asked for is what was last written."""
    Deployment = apps.get_model("deployments_app", "Deployment")
    Deployment.objects.filter(status__in=["CREATED", "UPDATING"]).update(applied_config=models.F("desired_config"))


class Migration(migrations.Migration):
    dependencies = [
        ("deployments_app", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="applied_config",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(applied_from_desired, migrations.RunPython.noop),
    ]
