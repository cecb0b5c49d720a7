from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments_app", "0002_deployment_applied_config")]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="health_reason",
            field=models.CharField(blank=True, default="", max_length=512),
        ),
    ]
