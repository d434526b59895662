from django.core.management import call_command
from django.db import migrations


def create_audit_head(apps, schema_editor):
    apps.get_model("requests", "AuditChainHead").objects.get_or_create(id=1)


def create_cache_table(apps, schema_editor):
    # Rate limits live in the database cache on the embedded default; a no-op with Redis.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("requests", "0001_initial")]

    operations = [
        migrations.RunPython(create_audit_head, migrations.RunPython.noop),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
