"""`manage.py orphans [--target NAME] [--json] [--delete]`: what this installation left in its
targets' accounts that no live deployment owns."""

from __future__ import annotations

import json
import sys
import time

from django.core.management.base import CommandError

from audit.services import A, audit_record
from deployer.models import Installation, Target
from deployer.orphans import orphans_delete, orphans_find
from gantry.commands import ContextCommand


class Command(ContextCommand):
    help = (
        "List resources that carry this installation's gantry:installation tag but that no "
        "live deployment owns; --delete removes them in dependency order."
    )

    def add_arguments(self, parser):
        parser.add_argument("--target", help="only this target's account (its name, any team)")
        parser.add_argument("--team", help="with --target: the team whose target it is")
        parser.add_argument("--json", action="store_true", help="one JSON object")
        parser.add_argument("--delete", action="store_true", help="delete what is listed")
        parser.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **opts):
        targets = Target.objects.select_related("team")
        if opts["target"]:
            targets = targets.filter(name=opts["target"])
            if opts["team"]:
                targets = targets.filter(team__name=opts["team"])
            if not targets.exists():
                raise CommandError(f"no target named {opts['target']!r}", returncode=2)
        installation = Installation.current().installation_id
        found = orphans_find(targets=targets)
        out = {"installation": installation, "orphans": [o.to_json() for o in found]}
        if not opts["json"]:
            self.stdout.write(f"installation {installation}: {len(found)} orphaned resource(s)")
            for orphan in found:
                r = orphan.resource
                self.stdout.write(
                    f"  {r.type} {r.physical_id} {r.name!r} ({r.region}, "
                    f"{', '.join(orphan.account.targets)}): {orphan.reason}"
                )
        if opts["delete"] and found:
            printer = (lambda _: None) if opts["json"] else (lambda m: self.stdout.write(f"  {m}"))
            audit_record(
                action=A.ORPHANS_DELETED,
                actor_name=opts.get("user") or "cli",
                object_type="installation",
                object_id=installation,
                data={"resources": [o.to_json() for o in found]},
            )
            # This command's own process waits for AWS between two looks; no worker does.
            stuck = orphans_delete(
                found, on_event=printer, wait=time.sleep, timeout=opts["timeout"]
            )
            out["deleted"] = len(found) - len(stuck)
            out["not_deleted"] = stuck
            if not opts["json"]:
                self.stdout.write(
                    f"deleted {out['deleted']}" + (f"; not deleted: {stuck}" if stuck else "")
                )
            if opts["json"]:
                self.stdout.write(json.dumps(out))
            if stuck:
                sys.exit(1)
            return
        if opts["json"]:
            self.stdout.write(json.dumps(out))
