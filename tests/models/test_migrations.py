"""The migrations own the schema: the models and the migration files never disagree."""

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_makemigrations_check_reports_no_changes():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)  # exits 1 on changes
    assert "No changes detected" in out.getvalue()
