"""Specs the pure tests share: the article's layout, and the same in two AZs."""

import dataclasses

from designer.spec import Spec

ARTICLE = Spec(
    name="demo",
    region="us-east-1",
    vpc_cidr="10.0.0.0/16",
    public_subnet_cidrs=("10.0.0.0/24",),
    lambda_subnet_cidrs=("10.0.1.0/24",),
    api_subnet_cidrs=("10.0.2.0/24",),
    api_port=443,
    nat="single",
    api_kind="ec2",
)

#: Two AZs of everything, so per_az and alb are meaningful.
TWO_AZ = dataclasses.replace(
    ARTICLE,
    public_subnet_cidrs=("10.0.0.0/24", "10.0.10.0/24"),
    lambda_subnet_cidrs=("10.0.1.0/24", "10.0.11.0/24"),
    api_subnet_cidrs=("10.0.2.0/24", "10.0.12.0/24"),
)
