"""The CloudFormation export as a pure function: what the template says against the graph it was
made from (references, ordering, parameters, outputs, the behaviour only the deployer knew).
cfn-lint and checkov judge the templates in test_export_lint.py; a stack built from one on the
emulator is compared with a real deployment in test_export_stack.py."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings

from designer.export import cloudformation_template, spec_template, template_text
from designer.export.cloudformation import (
    DIFFERENCES,
    LOOPBACK_EGRESS,
    OUTPUTS,
    ZIPFILE_MAX,
    references,
)
from designer.export.scanner import SKIPS
from designer.graph import Ref
from designer.plan import plan, refs_in
from designer.spec import validate_spec
from tests.specs import ARTICLE, TWO_AZ
from tests.strategies import valid_specs
from workload.artifacts import lambda_source, render_user_data

ROOT = Path(__file__).resolve().parent.parent
PSEUDO = re.compile(r"^AWS::")

VARIANTS = [
    dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind)
    for nat in ("none", "single", "per_az")
    for kind in ("ec2", "alb")
]
VARIANT_IDS = [f"{s.nat}-{s.api_kind}" for s in VARIANTS]


def export(spec, version=4):
    return spec_template(spec, version=version)


def fn_sub(text: str, variables: dict[str, str]) -> str:
    """CloudFormation's ``Fn::Sub``: ``${Name}`` replaced, ``${!x}`` written as ``${x}``."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        return "${" + name[1:] + "}" if name.startswith("!") else variables[name]

    return re.sub(r"\$\{([^}]*)\}", one, text)


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def template_edges(template: dict) -> dict[str, set[str]]:
    """What CloudFormation orders each resource after: its references and its DependsOn."""
    resources = template["Resources"]
    return {
        lid: {r for r in references(res.get("Properties", {})) if r in resources}
        | set(res.get("DependsOn", []))
        for lid, res in resources.items()
    }


def check_template(spec) -> dict:
    """The invariants every export keeps, for any valid spec."""
    graph = plan(spec)
    template = export(spec)
    resources = template["Resources"]
    parameters = template.get("Parameters", {})
    imported = {n.logical_id for n in graph if n.meta.get("imported")}

    # Every graph node is a resource of the same type, but the imported certificate.
    assert set(resources) == {n.logical_id for n in graph} - imported
    for lid, resource in resources.items():
        assert resource["Type"] == graph[lid].type

    # Every reference names a resource, a parameter or a pseudo parameter; none is left as a
    # Gantry Ref object or its JSON form.
    text = json.dumps(template)
    assert '"Attribute"' not in text
    for lid, resource in resources.items():
        for name in references(resource.get("Properties", {})):
            assert name in resources or name in parameters or PSEUDO.match(name), (lid, name)
        for graph_ref in refs_in(graph[lid].properties):
            if graph_ref.logical_id in imported:
                continue
            expected = (
                {"Ref": graph_ref.logical_id}
                if graph_ref.attribute == "Id"
                else {"Fn::GetAtt": [graph_ref.logical_id, graph_ref.attribute]}
            )
            assert json.dumps(expected) in json.dumps(resource["Properties"]), (lid, graph_ref)

    # DependsOn: only what no reference shows, directly or through others, and together with
    # the references it orders every resource after everything the graph orders it after.
    edges = template_edges(template)
    for lid, resource in resources.items():
        direct = {r for r in references(resource.get("Properties", {})) if r in resources}
        for dep in resource.get("DependsOn", []):
            assert dep not in direct, (lid, dep)
            others = edges[lid] - {dep}
            assert not any(dep in reachable(edges, o) | {o} for o in others), (lid, dep)
        after = reachable(edges, lid)
        # A held resource (the function), which CloudFormation cannot hold, comes after what
        # the deployer releases it after.
        for dep in [*graph[lid].depends_on, *graph[lid].hold_until()]:
            if dep not in imported:
                assert dep in after, (lid, dep)

    # Parameters all have a default, but the ones only a pipeline can know (a certificate).
    for name, parameter in parameters.items():
        assert "Default" in parameter or name == "ApiCertificateArn", name
    return template


@pytest.mark.parametrize("spec", VARIANTS, ids=VARIANT_IDS)
def test_every_variant_maps_the_graph_to_resources_references_and_ordering(spec):
    check_template(spec)


@settings(max_examples=60)
@given(valid_specs())
def test_any_valid_spec_maps_to_a_sound_template(data):
    check_template(validate_spec(data).spec)


def test_depends_on_carries_the_orderings_no_reference_shows():
    template = export(ARTICLE)
    resources = template["Resources"]
    # A route to the internet gateway waits for the attachment, which no property shows.
    assert resources["PublicDefaultRoute"]["DependsOn"] == ["VpcGatewayAttachment"]
    # The function waits for the rules, routes and endpoint its calls cross (the deployer
    # holds it at zero concurrency instead; CloudFormation cannot).
    function_after = set(resources["LambdaFunction"]["DependsOn"])
    assert {"LambdaToApiEgress", "ApiFromLambdaIngress", "LambdaDefaultRoute"} <= function_after
    # ...but not for what its own properties already reference.
    assert "LambdaRole" not in function_after
    assert "DependsOn" not in resources["Vpc"]
    assert "DependsOn" not in resources["LambdaSubnet1"]


def test_the_template_is_the_same_in_json_and_yaml_and_deterministic():
    template = export(ARTICLE)
    as_json, as_yaml = template_text(template, "json"), template_text(template, "yaml")
    assert json.loads(as_json) == template
    assert yaml.safe_load(as_yaml) == template
    assert template_text(export(ARTICLE), "yaml") == as_yaml
    # Multi-line strings (code, user data) are literal blocks a reviewer reads as they run.
    assert "ZipFile: |" in as_yaml
    assert "Fn::Sub: |" in as_yaml
    with pytest.raises(ValueError, match="yaml, json"):
        template_text(template, "xml")


def test_description_and_metadata_name_the_design_its_version_and_gantry():
    template = export(ARTICLE, version=7)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    description = template["Description"]
    assert "demo" in description and "version 7" in description and "Gantry" in description
    meta = template["Metadata"]["Gantry"]
    assert (meta["Design"], meta["Version"], meta["ExportedBy"]) == ("demo", 7, "Gantry")
    assert set(DIFFERENCES) <= set(meta["DiffersFromGantry"])
    unsaved = export(ARTICLE, version=None)
    assert "unsaved" in unsaved["Description"] and "Version" not in unsaved["Metadata"]["Gantry"]


def test_parameters_carry_what_a_pipeline_sets_with_the_designs_values_as_defaults():
    spec = dataclasses.replace(TWO_AZ, tags=(("team", "orders"), ("cost-center", "42")))
    template = export(spec)
    parameters, resources = template["Parameters"], template["Resources"]

    # Availability Zones: one parameter per AZ position, no AZ name in any resource.
    assert parameters["AvailabilityZone1"]["Type"] == "AWS::EC2::AvailabilityZone::Name"
    assert parameters["AvailabilityZone1"]["Default"] == "us-east-1a"
    assert parameters["AvailabilityZone2"]["Default"] == "us-east-1b"
    assert resources["LambdaSubnet2"]["Properties"]["AvailabilityZone"] == {
        "Ref": "AvailabilityZone2"
    }
    assert "us-east-1a" not in json.dumps(resources)

    # The AMI: the public SSM parameter the deployer resolves, as an SSM parameter type.
    image = parameters["ImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )
    assert resources["ApiInstance"]["Properties"]["ImageId"] == {"Ref": "ImageId"}

    # Tags: each design tag's value is a parameter; Name stays the design's.
    assert parameters["TagValue1"]["Default"] == "orders"
    assert parameters["TagValue2"]["Default"] == "42"
    vpc_tags = resources["Vpc"]["Properties"]["Tags"]
    assert {"Key": "team", "Value": {"Ref": "TagValue1"}} in vpc_tags
    assert {"Key": "Name", "Value": "demo-vpc"} in vpc_tags

    # The region is the stack's, never the planned one written out.
    endpoint = resources["SecretsManagerEndpoint"]["Properties"]["ServiceName"]
    assert endpoint == {"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"}
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters)


def test_account_unique_names_are_left_to_cloudformation():
    resources = export(dataclasses.replace(TWO_AZ, api_kind="alb"))["Resources"]
    assert "FunctionName" not in resources["LambdaFunction"]["Properties"]
    assert "LogGroupName" not in resources["LambdaLogGroup"]["Properties"]
    assert "Name" not in resources["ApiSecret"]["Properties"]
    for lid in ("LambdaSecurityGroup", "ApiSecurityGroup", "EndpointSecurityGroup"):
        assert "GroupName" not in resources[lid]["Properties"]
    # The function logs to the group the template makes, whatever CloudFormation names it.
    logging = resources["LambdaFunction"]["Properties"]["LoggingConfig"]
    assert logging == {"LogGroup": {"Ref": "LambdaLogGroup"}}


@pytest.mark.parametrize("spec", VARIANTS, ids=VARIANT_IDS)
def test_outputs_give_the_api_address_function_secret_and_security_groups(spec):
    template = export(spec)
    outputs = template["Outputs"]
    assert set(OUTPUTS) <= set(outputs)
    host = (
        "${ApiLoadBalancer.DNSName}" if spec.api_kind == "alb" else "${ApiInstance.PrivateDnsName}"
    )
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": f"https://{host}:443/"}
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": ["LambdaFunction", "Arn"]}
    assert outputs["SecretArn"]["Value"] == {"Ref": "ApiSecret"}
    groups = [
        lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroup"
    ]
    for lid in groups:
        assert outputs[f"{lid}Id"]["Value"] == {"Ref": lid}


def test_the_function_code_is_gantrys_handler_inline_unless_a_bucket_is_given():
    template = export(ARTICLE)
    code = template["Resources"]["LambdaFunction"]["Properties"]["Code"]
    inline, s3 = code["Fn::If"][1], code["Fn::If"][2]
    assert code["Fn::If"][0] == "InlineCode"
    assert inline == {"ZipFile": lambda_source()}
    # CloudFormation names the inline file index.py: the handler setting must match it.
    assert template["Resources"]["LambdaFunction"]["Properties"]["Handler"] == "index.handler"
    assert s3 == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    assert template["Conditions"]["InlineCode"] == {"Fn::Equals": [{"Ref": "CodeS3Bucket"}, ""]}
    assert template["Parameters"]["CodeS3Bucket"]["Default"] == ""


def test_code_too_large_for_the_template_comes_from_s3_only():
    large = "x = 1\n" * (ZIPFILE_MAX // 6 + 1)
    template = cloudformation_template(plan(ARTICLE), design="demo", version=1, code=large)
    code = template["Resources"]["LambdaFunction"]["Properties"]["Code"]
    assert code == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    assert "Default" not in template["Parameters"]["CodeS3Bucket"]
    assert "Conditions" not in template
    assert "x = 1" not in json.dumps(template)


@pytest.mark.parametrize("kind", ["ec2", "alb"])
def test_user_data_is_what_the_deployer_sends_once_cloudformation_resolves_it(kind):
    spec = dataclasses.replace(TWO_AZ, api_kind=kind, api_port=8443)
    resources = export(spec)["Resources"]
    if kind == "ec2":
        user_data = resources["ApiInstance"]["Properties"]["UserData"]
    else:
        user_data = resources["ApiLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"
    script = fn_sub(
        user_data["Fn::Base64"]["Fn::Sub"], {"ApiSecret": arn, "AWS::Region": "eu-west-1"}
    )
    assert script == render_user_data(
        secret_arn=arn, region="eu-west-1", api_port=8443, anonymous_liveness=kind == "alb"
    )
    base64.b64encode(script.encode())  # what Fn::Base64 makes of it: plain text in


def test_the_default_egress_rule_is_replaced_by_a_rule_that_matches_nothing():
    template = export(ARTICLE)
    resources = template["Resources"]
    for resource in resources.values():
        if resource["Type"] != "AWS::EC2::SecurityGroup":
            continue
        assert resource["Properties"]["SecurityGroupEgress"] == [LOOPBACK_EGRESS]
        assert "DefaultEgress" in resource["Metadata"]["Gantry"]
    # The groups' real egress rules stay separate resources, as in the graph.
    egress = resources["LambdaToApiEgress"]["Properties"]
    assert egress["GroupId"] == {"Ref": "LambdaSecurityGroup"}
    assert egress["DestinationSecurityGroupId"] == {"Ref": "ApiSecurityGroup"}
    assert "DefaultEgress" in template["Metadata"]["Gantry"]["DiffersFromGantry"]


def test_the_imported_certificate_becomes_a_parameter_and_the_metadata_says_why():
    template = export(dataclasses.replace(TWO_AZ, api_kind="alb"))
    assert "ApiCertificate" not in template["Resources"]
    assert not [
        r for r in template["Resources"].values() if r["Type"].startswith("AWS::CertificateManager")
    ]
    listener = template["Resources"]["ApiListener"]["Properties"]
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "ApiCertificateArn"}}]
    parameter = template["Parameters"]["ApiCertificateArn"]
    assert re.match(
        parameter["AllowedPattern"],
        "arn:aws:acm:us-east-1:123456789012:certificate/0f2c5d1e-aaaa-4bbb-8ccc-123456789abc",
    )
    assert "import" in template["Metadata"]["Gantry"]["DiffersFromGantry"]["Certificate"]
    assert "Certificate" not in export(ARTICLE)["Metadata"]["Gantry"]["DiffersFromGantry"]


def test_design_fixes_for_the_scanner_are_in_the_template():
    resources = export(dataclasses.replace(TWO_AZ, api_kind="alb"))["Resources"]
    assert resources["LambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] == 10
    assert {
        "Key": "routing.http.drop_invalid_header_fields.enabled",
        "Value": "true",
    } in resources["ApiLoadBalancer"]["Properties"]["LoadBalancerAttributes"]


def test_every_scanner_skip_is_in_the_resource_metadata_and_the_readme():
    template = export(dataclasses.replace(TWO_AZ, api_kind="alb"))
    readme = " ".join((ROOT / "README.md").read_text().split())
    for type_name, skips in SKIPS.items():
        (resource,) = [r for r in template["Resources"].values() if r["Type"] == type_name]
        listed = resource["Metadata"]["checkov"]["skip"]
        assert listed == [{"id": check, "comment": reason} for check, reason in skips]
        for check, reason in skips:
            assert f"`{check}`" in readme, check
            assert " ".join(reason.split()) in readme, check


def test_a_graph_ref_never_reaches_the_template_as_an_object():
    template = export(dataclasses.replace(TWO_AZ, api_kind="alb"))

    def walk(value):
        assert not isinstance(value, Ref)
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
