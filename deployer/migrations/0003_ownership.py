"""Ownership no other installation can claim, and the graph stored with each deployment.

Deployments made before this keep ``gantry:deployment=gd-<id>`` as their identity (their
resources carry that tag and no ``gantry:installation``), so they can still be found and
destroyed; every new deployment gets a random identity. Their graph is stored as it is planned
from their spec snapshot by this release, limited to the nodes that have a record.
"""

import uuid

from django.db import migrations, models
from django.db.models import Q

import deployer.models


def legacy_identities(apps, schema_editor):
    Deployment = apps.get_model("deployer", "Deployment")
    for pk in Deployment.objects.values_list("pk", flat=True):
        Deployment.objects.filter(pk=pk).update(identity=f"gd-{pk}")


def stored_graphs(apps, schema_editor):
    from deployer.graphs import legacy_graph_document

    Deployment = apps.get_model("deployer", "Deployment")
    ResourceRecord = apps.get_model("deployer", "ResourceRecord")
    for deployment in Deployment.objects.all().iterator():
        records = dict(
            ResourceRecord.objects.filter(deployment=deployment)
            .order_by("position")
            .values_list("logical_id", "type")
        )
        Deployment.objects.filter(pk=deployment.pk).update(
            graph=legacy_graph_document(deployment.spec, records)
        )


def installation(apps, schema_editor):
    Installation = apps.get_model("deployer", "Installation")
    Installation.objects.get_or_create(key=1, defaults={"installation_id": str(uuid.uuid4())})


class Migration(migrations.Migration):
    dependencies = [("deployer", "0002_api_support")]

    operations = [
        migrations.CreateModel(
            name="Installation",
            fields=[
                (
                    "key",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "installation_id",
                    models.CharField(
                        default=deployer.models.new_identity, max_length=64, unique=True
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=Q(key=1), name="installation_single_row")
                ]
            },
        ),
        migrations.RunPython(installation, migrations.RunPython.noop),
        migrations.AddField(
            model_name="deployment",
            name="lease_holder",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="deployment",
            name="lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deployment",
            name="identity",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(legacy_identities, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="deployment",
            name="identity",
            field=models.CharField(
                default=deployer.models.new_identity, editable=False, max_length=64, unique=True
            ),
        ),
        migrations.AddField(
            model_name="deployment",
            name="installation",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="deployment",
            name="graph",
            field=models.JSONField(default=dict, editable=False),
        ),
        migrations.RunPython(stored_graphs, migrations.RunPython.noop),
    ]
