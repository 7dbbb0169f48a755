"""Names that AWS makes unique per account and region (or per VPC), and what becomes of them.

The plan gives such a resource a readable name built from the design's (``orders-lambda-function``)
because the preview shows it and a person looks for it in the console. Two designs of the same
name, in two teams or two Gantry installations sharing one account, must still deploy side by
side, and a replaced resource must not collide with its predecessor. So the deployer makes every
one of these names unique the way CloudFormation's generated names are (``<stack>-<logical
id>-<random>``): the plan's name first, then a short part of the deployment's identity
(``deployer.resources.base.AwsContext.unique_name``). The CloudFormation export leaves them out
for CloudFormation to generate.

Resources the plan does not name at all (IAM roles, instance profiles, target groups, load
balancers, launch templates, Auto Scaling groups) get a generated name from their handler
(``AwsContext.physical_name``), built the same way.
"""

from __future__ import annotations

#: CloudFormation type -> (the property holding the name the plan gives, AWS's length limit).
UNIQUE_NAMES: dict[str, tuple[str, int]] = {
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::SecretsManager::Secret": ("Name", 512),
    # Unique per VPC rather than per account: a replacement group lives beside its predecessor.
    "AWS::EC2::SecurityGroup": ("GroupName", 255),
}
