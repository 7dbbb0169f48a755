"""`manage.py plan SPEC.json [--json]`: the resource graph, route tables, rules and cost."""

import json
import sys

from django.core.management.base import BaseCommand

from designer.cli import EXIT_INVALID, SpecFileError, unreadable_json, validate_file, write_issues
from designer.preview import plan_document


class Command(BaseCommand):
    help = "Show what a Gantry spec will build: resources in creation order, routes, rules, cost."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("spec", help="path to the spec JSON file, or - for stdin")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, spec: str, **options):
        as_json = options["json"]
        try:
            result = validate_file(spec)
        except SpecFileError as exc:
            if as_json:
                self.stdout.write(unreadable_json(str(exc)))
            raise
        if not result.valid or result.spec is None:
            if as_json:
                self.stdout.write(json.dumps(result.to_json()))
            else:
                write_issues(self.stderr, result)
            sys.exit(EXIT_INVALID)
        doc = plan_document(spec=result.spec)
        if as_json:
            doc["warnings"] = [w.to_json() for w in result.warnings]
            self.stdout.write(json.dumps(doc))
            return
        write_issues(self.stderr, result)
        self._print_human(doc)

    def _print_human(self, doc) -> None:
        out = self.stdout.write
        out(f"{len(doc['resources'])} resources, in creation order:")
        width = max(len(r["logical_id"]) for r in doc["resources"])
        for r in doc["resources"]:
            after = f"  after {', '.join(r['depends_on'])}" if r["depends_on"] else ""
            out(f"  {r['logical_id']:<{width}}  {r['type']}{after}")
        out("")
        out("Route tables:")
        for rt in doc["route_tables"]:
            subnets = ", ".join(s["cidr"] for s in rt["subnets"])
            out(f"  {rt['name']} ({subnets})")
            for route in rt["routes"]:
                out(f"    {route['destination']:<18} -> {route['target']}")
        out("")
        out("Security groups:")
        for sg in doc["security_groups"]:
            out(f"  {sg['name']}")
            for direction, rules in (("in ", sg["ingress"]), ("out", sg["egress"])):
                if not rules:
                    out(f"    {direction} none")
                for rule in rules:
                    out(f"    {direction} {rule['protocol']}/{rule['port']} {rule['peer']}")
        out("")
        cost = doc["cost"]
        out(f"Monthly cost estimate ({cost['currency']}, prices of {cost['effective_date']}):")
        for item in cost["items"]:
            out(f"  {item['monthly_usd']:>9.2f}  {item['label']}  ({item['detail']})")
        out(f"  {cost['total_monthly_usd']:>9.2f}  total")
        nat = cost["nat_comparison"]
        with_nat, without = nat["with_nat_monthly_usd"], nat["without_nat_monthly_usd"]
        if nat["choice"] == "none":
            out(
                f"nat none saves {nat['delta_monthly_usd']:.2f} a month against nat single "
                f"({without:.2f} instead of {with_nat:.2f})"
            )
        else:
            out(
                f"nat {nat['choice']} costs {nat['delta_monthly_usd']:.2f} a month more than "
                f"nat none ({with_nat:.2f} instead of {without:.2f})"
            )
        out(f"  {nat['detail']}")
        if "region_note" in cost:
            out(cost["region_note"])
