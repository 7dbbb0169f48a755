"""One handler module per CloudFormation type the plan emits (see ``base.py`` for the contract)."""

from __future__ import annotations

import importlib

from deployer.resources.base import ResourceHandler

#: CloudFormation type -> module in this package that defines ``HANDLER``.
MODULES: dict[str, str] = {
    "AWS::EC2::VPC": "vpc",
    "AWS::EC2::Subnet": "subnet",
    "AWS::EC2::InternetGateway": "internet_gateway",
    "AWS::EC2::VPCGatewayAttachment": "gateway_attachment",
    "AWS::EC2::RouteTable": "route_table",
    "AWS::EC2::Route": "route",
    "AWS::EC2::SubnetRouteTableAssociation": "route_table_association",
    "AWS::EC2::EIP": "elastic_ip",
    "AWS::EC2::NatGateway": "nat_gateway",
    "AWS::EC2::SecurityGroup": "security_group",
    "AWS::EC2::SecurityGroupIngress": "security_group_ingress",
    "AWS::EC2::SecurityGroupEgress": "security_group_egress",
    "AWS::EC2::VPCEndpoint": "vpc_endpoint",
    "AWS::SecretsManager::Secret": "secret",
    "AWS::IAM::Role": "iam_role",
    "AWS::IAM::Policy": "iam_policy",
    "AWS::IAM::InstanceProfile": "instance_profile",
    "AWS::Logs::LogGroup": "log_group",
    "AWS::Lambda::Function": "lambda_function",
    "AWS::EC2::Instance": "instance",
    "AWS::EC2::LaunchTemplate": "launch_template",
    "AWS::AutoScaling::AutoScalingGroup": "autoscaling_group",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "load_balancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "target_group",
    "AWS::ElasticLoadBalancingV2::Listener": "listener",
    "AWS::CertificateManager::Certificate": "certificate",
}


class UnknownResourceType(LookupError):
    pass


def handler_for(type_name: str) -> ResourceHandler:
    try:
        module = MODULES[type_name]
    except KeyError:
        raise UnknownResourceType(f"Gantry has no handler for {type_name}") from None
    return importlib.import_module(f"deployer.resources.{module}").HANDLER
