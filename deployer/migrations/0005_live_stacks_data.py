"""Existing deployments become live stacks: each record gets the node it was built from (from
the stored graph), and each deployment its first run (plus its destroy, when it had one), which
its events so far belong to."""

from django.db import migrations

CREATE_STATUS = {
    "queued": "queued",
    "deploying": "in_progress",
    "succeeded": "succeeded",
    "failed": "failed",
    "rolling_back": "rolling_back",
    "rolled_back": "rolled_back",
    "cancelled": "cancelled",
}
DESTROY_STATUS = {"destroying": "in_progress", "destroyed": "succeeded", "destroy_failed": "failed"}


def forwards(apps, schema_editor):
    Deployment = apps.get_model("deployer", "Deployment")
    Run = apps.get_model("deployer", "Run")
    ResourceRecord = apps.get_model("deployer", "ResourceRecord")
    DeploymentEvent = apps.get_model("deployer", "DeploymentEvent")
    for deployment in Deployment.objects.all().iterator():
        nodes = {n["logical_id"]: n for n in (deployment.graph or {}).get("nodes", [])}
        building = deployment.status in ("queued", "deploying")
        deleting = deployment.status in ("rolling_back", "destroying")
        for record in ResourceRecord.objects.filter(deployment=deployment):
            record.node = nodes.get(record.logical_id, {})
            # What the run in progress still does to it (the walker goes on from there).
            if building:
                record.action, record.settled = "create", record.state == "ready"
            elif deleting:
                record.action, record.settled = "delete", record.state == "deleted"
            elif deployment.status == "destroy_failed" and record.state != "deleted":
                record.action, record.settled = "delete", False
            else:
                record.action, record.settled = "", True
            record.save(update_fields=["node", "action", "settled"])
        create = Run.objects.create(
            deployment=deployment,
            number=1,
            operation="create",
            status=CREATE_STATUS.get(deployment.status, "succeeded"),
            reason="" if deployment.status in DESTROY_STATUS else deployment.reason,
            requested_by_id=deployment.requested_by_id,
            version_after=deployment.design_version,
            spec_after=deployment.spec,
            graph_after=deployment.graph,
            keep_on_failure=deployment.keep_on_failure,
            started_at=deployment.started_at,
            finished_at=None if deployment.status in DESTROY_STATUS else deployment.finished_at,
        )
        current = create
        if deployment.status in DESTROY_STATUS:
            current = Run.objects.create(
                deployment=deployment,
                number=2,
                operation="destroy",
                status=DESTROY_STATUS[deployment.status],
                reason=deployment.reason,
                requested_by_id=deployment.requested_by_id,
                version_before=deployment.design_version,
                spec_before=deployment.spec,
                graph_before=deployment.graph,
                finished_at=deployment.finished_at,
            )
        DeploymentEvent.objects.filter(deployment=deployment).update(run=create)
        Deployment.objects.filter(pk=deployment.pk).update(current_run=current)


class Migration(migrations.Migration):
    dependencies = [("deployer", "0004_live_stacks")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
