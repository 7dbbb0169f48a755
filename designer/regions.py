"""AWS commercial regions and the Availability Zone letters each one offers.

Subnets in a spec are placed one per AZ in list order: the first CIDR of each list goes to the
region's first AZ letter, the second to the second, and so on. A region cannot hold more subnets
of one kind than it has AZs.
"""

REGION_AZ_LETTERS: dict[str, str] = {
    "us-east-1": "abcdef",
    "us-east-2": "abc",
    "us-west-1": "ab",
    "us-west-2": "abcd",
    "af-south-1": "abc",
    "ap-east-1": "abc",
    "ap-east-2": "abc",
    "ap-south-1": "abc",
    "ap-south-2": "abc",
    "ap-southeast-1": "abc",
    "ap-southeast-2": "abc",
    "ap-southeast-3": "abc",
    "ap-southeast-4": "abc",
    "ap-southeast-5": "abc",
    "ap-southeast-6": "abc",
    "ap-southeast-7": "abc",
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ap-northeast-3": "abc",
    "ca-central-1": "abd",
    "ca-west-1": "abc",
    "eu-central-1": "abc",
    "eu-central-2": "abc",
    "eu-west-1": "abc",
    "eu-west-2": "abc",
    "eu-west-3": "abc",
    "eu-south-1": "abc",
    "eu-south-2": "abc",
    "eu-north-1": "abc",
    "il-central-1": "abc",
    "me-south-1": "abc",
    "me-central-1": "abc",
    "mx-central-1": "abc",
    "sa-east-1": "abc",
}

REGIONS: tuple[str, ...] = tuple(sorted(REGION_AZ_LETTERS))


def availability_zones(region: str) -> list[str]:
    """The region's AZ names in the order subnets are placed into them."""
    return [f"{region}{letter}" for letter in REGION_AZ_LETTERS[region]]
