"""API clients get SMART scopes in place of the two permissions, a client_id and keys for SMART
Backend Services; issued access tokens and used assertions are kept.

Existing clients keep what they could do: everything, except that one without the right to
prescribe (at a prescribing node) or to dispense (at a dispensing node) may read and search
everything and write only what a partner writes there."""

import secrets

import django.db.models.deletion
from django.db import migrations, models

import nodes.models


def scopes_from_permissions(apps, schema_editor):
    ApiClient = apps.get_model("nodes", "ApiClient")
    for client in ApiClient.objects.select_related("node"):
        kind = client.node.kind
        if kind == "prescribing" and not client.may_prescribe:
            client.scopes = "system/*.rs system/MedicationDispense.cud system/Subscription.cud"
        elif kind == "dispensing" and not client.may_dispense:
            client.scopes = "system/*.rs system/MedicationRequest.cud system/Subscription.cud"
        else:
            client.scopes = "system/*.cruds"
        client.client_id = secrets.token_hex(16)
        client.save(update_fields=["scopes", "client_id"])


class Migration(migrations.Migration):
    dependencies = [("nodes", "0003_integration_engine")]

    operations = [
        migrations.AddField(
            model_name="apiclient",
            name="scopes",
            field=models.TextField(
                blank=True,
                help_text="SMART scopes, space-separated: system/MedicationRequest.rs, system/*.read, "
                "system/Subscription.cruds. At a prescribing node MedicationRequest c and u are the right "
                "to prescribe; at a dispensing node MedicationDispense c and u the right to dispense.",
            ),
        ),
        migrations.AddField(
            model_name="apiclient",
            name="client_id",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(scopes_from_permissions, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apiclient",
            name="client_id",
            field=models.CharField(
                default=nodes.models.new_client_id,
                editable=False,
                help_text="The iss and sub of its signed assertions (SMART Backend Services).",
                max_length=64,
                unique=True,
            ),
        ),
        migrations.RemoveField(model_name="apiclient", name="may_dispense"),
        migrations.RemoveField(model_name="apiclient", name="may_prescribe"),
        migrations.AddField(
            model_name="apiclient",
            name="jwks",
            field=models.JSONField(
                blank=True,
                help_text='Its public keys, a JWK Set ({"keys": [...]}), RS384 or ES384.',
                null=True,
                verbose_name="JWKS",
            ),
        ),
        migrations.AddField(
            model_name="apiclient",
            name="jwks_uri",
            field=models.URLField(
                blank=True, help_text="Or where its JWK Set is published.", verbose_name="JWKS URI"
            ),
        ),
        migrations.AlterField(
            model_name="apiclient",
            name="token_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.CreateModel(
            name="AccessToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("scopes", models.TextField()),
                ("expires", models.DateTimeField(db_index=True)),
                (
                    "client",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="access_tokens",
                        to="nodes.apiclient",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="AssertionUse",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("jti", models.CharField(max_length=255)),
                ("expires", models.DateTimeField(db_index=True)),
                (
                    "client",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assertion_uses",
                        to="nodes.apiclient",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("client", "jti"), name="one_use_per_assertion")
                ]
            },
        ),
    ]
