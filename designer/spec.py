"""Spec v1: the user's input, and the one function that validates it.

The form, the REST API and the CLI all call :func:`validate_spec`; none re-implements a rule.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from designer.regions import REGION_AZ_LETTERS, REGIONS

SPEC_VERSION = 1

NAT_CHOICES = ("none", "single", "per_az")
API_KINDS = ("ec2", "alb")

#: Every top-level field of spec v1, in form order. Errors are keyed by these names
#: (or ``"spec"`` for a problem with the document as a whole).
FIELDS = (
    "name",
    "region",
    "vpc_cidr",
    "public_subnet_cidrs",
    "lambda_subnet_cidrs",
    "api_subnet_cidrs",
    "api_port",
    "nat",
    "api_kind",
    "tags",
)

#: The article's layout.
DEFAULT_SPEC: dict[str, Any] = {
    "name": "lambda-private-api",
    "region": "us-east-1",
    "vpc_cidr": "10.0.0.0/16",
    "public_subnet_cidrs": ["10.0.0.0/24"],
    "lambda_subnet_cidrs": ["10.0.1.0/24"],
    "api_subnet_cidrs": ["10.0.2.0/24"],
    "api_port": 443,
    "nat": "single",
    "api_kind": "ec2",
    "tags": {},
}

#: Fields a spec must give. ``region`` and ``tags`` are optional; ``public_subnet_cidrs`` is
#: optional only when ``nat`` is ``"none"``. Nothing else is defaulted: the CLI and the API send
#: a whole spec and the form starts from :data:`DEFAULT_SPEC`, so a missing field is a mistake.
REQUIRED_FIELDS = (
    "name",
    "vpc_cidr",
    "lambda_subnet_cidrs",
    "api_subnet_cidrs",
    "api_port",
    "nat",
    "api_kind",
)
DEFAULT_REGION = "us-east-1"

SUBNET_FIELDS = ("public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs")

# --- AWS limits (errors) -------------------------------------------------------------------

#: CreateVpc and CreateSubnet accept IPv4 blocks from /16 (65,536 addresses) to /28 (16).
MIN_PREFIX = 16
MAX_PREFIX = 28
#: Tag limits from the AWS tagging rules. AWS allows 50 tags per resource; Gantry puts three of
#: its own on every resource (gantry:deployment, gantry:logical-id, Name), and keeps the rest as
#: headroom for tags an organisation's policies add, so users get 40.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
MAX_USER_TAGS = 40
#: Tag prefixes nobody may set: ``aws:`` is reserved by AWS (in any letter case), ``gantry:`` is
#: where Gantry finds its own resources again, so a user tag there would confuse the deployer.
RESERVED_TAG_PREFIXES = ("aws:", "gantry:")
#: Gantry names every resource itself (``Name`` is what the console shows).
RESERVED_TAG_KEYS = ("Name",)
#: Tags go onto the Lambda function and its IAM role too, and those services accept only
#: letters, digits, spaces and these characters in tag keys and values (EC2 allows more).
TAG_EXTRA_CHARS = " _.:/=+-@"
PORT_MIN = 1
PORT_MAX = 65535
#: An internal ALB must have subnets in at least two Availability Zones.
ALB_MIN_SUBNETS = 2

# --- capacity planning (warnings) ------------------------------------------------------------

#: AWS keeps the network address, the VPC router, DNS, one future address and the broadcast
#: address of every subnet: a /28 has 16 addresses but only 11 usable ones.
AWS_RESERVED_PER_SUBNET = 5
#: Lambda attaches one Hyperplane ENI per (subnet, security group) pair, but it creates new ENIs
#: when the function's VPC configuration changes (before releasing the old ones, which linger for
#: minutes) and adds more as concurrency grows; an exhausted subnet makes invocations fail with
#: Lambda.SubnetIPAddressLimitReachedException. The plan itself needs only 1-2 addresses per
#: Lambda subnet, so the headroom decides: a /26 (59 usable addresses) absorbs that churn.
LAMBDA_SUBNET_MAX_PREFIX = 26
LAMBDA_MIN_USABLE = 2 ** (32 - LAMBDA_SUBNET_MAX_PREFIX) - AWS_RESERVED_PER_SUBNET
#: ALB nodes: AWS needs at least 8 free addresses in each load balancer subnet so the ALB can add
#: nodes as it scales, and recommends a /27 or larger subnet.
ALB_FREE_ADDRESSES_PER_SUBNET = 8
ALB_SUBNET_MAX_PREFIX = 27
#: An Auto Scaling group replacing an instance runs the old and the new one side by side, so
#: plan two instances per AZ behind the ALB.
ASG_INSTANCES_PER_AZ = 2
# No capacity rule is needed for the other subnets: api_kind "ec2" puts one instance (two while
# it is replaced) in the first API subnet, and a public subnet holds one NAT gateway, while the
# smallest subnet AWS allows (/28) leaves 11 usable addresses.

#: Special-purpose ranges that cannot hold a VPC: nothing routes to them, and one of them holds
#: the VPC's own services (169.254.169.254 is the instance metadata service, 169.254.169.253
#: the DNS resolver). AWS refuses them for a VPC; Gantry says so before a deployment fails.
UNUSABLE_RANGES = tuple(
    (ipaddress.IPv4Network(cidr), what)
    for cidr, what in (
        ("0.0.0.0/8", '"this network" range (RFC 1122)'),
        ("127.0.0.0/8", "loopback range"),
        ("169.254.0.0/16", "link-local range, where the instance metadata service and DNS live"),
        ("224.0.0.0/4", "multicast range"),
        ("240.0.0.0/4", "reserved range (class E, with the broadcast address)"),
    )
)
#: Docker's default bridge network: hosts running containers (CI runners, and AWS services such
#: as Cloud9 and SageMaker) cannot reach addresses in it, so AWS advises against it for a VPC.
DOCKER_BRIDGE = ipaddress.IPv4Network("172.17.0.0/16")

RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
#: RFC 6598 shared address space, used by carrier-grade NAT (and by some ISPs and VPNs).
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")

#: The largest number of AZs any region offers: the list-length limit when the region is wrong.
MAX_AZS = max(len(letters) for letters in REGION_AZ_LETTERS.values())

_NAME_RE = re.compile(r"[a-z][a-z0-9-]{2,39}")
_NAME_MIN, _NAME_MAX = 3, 40
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# Looser than a valid CIDR (leading zeros, octets above 255, prefixes above 32) so that near
# misses get a specific message; those values are checked afterwards. The bounded digit runs
# keep int() cheap on hostile input.
_CIDR_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,3})")
_ADDRESS_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_PORT_TEXT_RE = re.compile(r"[0-9]{1,5}")
_SHOW_MAX = 60


@dataclass(frozen=True)
class Spec:
    """A spec that passed validation (CIDRs normalised to their canonical text)."""

    name: str
    region: str
    vpc_cidr: str
    public_subnet_cidrs: tuple[str, ...]
    lambda_subnet_cidrs: tuple[str, ...]
    api_subnet_cidrs: tuple[str, ...]
    api_port: int
    nat: str
    api_kind: str
    tags: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs"):
            data[key] = list(data[key])
        data["tags"] = dict(self.tags)
        return data


@dataclass(frozen=True)
class Issue:
    """One error or warning, keyed by the spec field it is about.

    ``field`` is a top-level spec field name, or ``"spec"`` for the document as a whole (so every
    issue names a field a client knows); ``index`` points at the list item (a subnet CIDR) or is
    None; ``key`` names the offending key: a tag key for ``tags``, or for ``"spec"`` a top-level
    key that is not a spec v1 field (or ``version`` when its value is not 1).
    """

    field: str
    message: str
    index: int | None = None
    key: str | None = None
    #: What kind of problem this is and its values (``"overlap"``, ``{"other_index": 0}``...),
    #: so a page can say the same thing in its own words (``designer/wording.py``) while the
    #: API and the CLI keep ``message``, in the spec's terms. Not part of the JSON form.
    code: str = field(default="", compare=False, repr=False)
    params: tuple[tuple[str, Any], ...] = field(default=(), compare=False, repr=False)

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            data["index"] = self.index
        if self.key is not None:
            data["key"] = self.key
        return data


@dataclass
class ValidationResult:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    spec: Spec | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def errors_by_field(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for issue in self.errors:
            out.setdefault(issue.field, []).append(issue.message)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [e.to_json() for e in self.errors],
            "warnings": [w.to_json() for w in self.warnings],
        }


def validate_spec(data: Any) -> ValidationResult:
    """Validate a decoded JSON document as spec v1. Pure; never raises on any input.

    Every rule lives here so the form, the API and the CLI agree. Each field is checked on its
    own first; rules that relate fields (a subnet inside the VPC, no overlaps, NAT needs public
    subnets) run only on values that passed their own check, so one mistake gives one error.

    Decisions the table in DESIGN.md leaves open:

    - ``region`` defaults to ``us-east-1`` and ``tags`` to none when the key is absent (an
      explicit ``null`` is an error). Every other field except ``public_subnet_cidrs`` is
      required.
    - ``public_subnet_cidrs`` may be absent or empty when ``nat`` is ``"none"``. If it is given
      with ``nat`` ``"none"`` it is still checked like any subnet list (so switching NAT on later
      does not uncover errors), but only a warning says it is unused: public subnets exist only
      to hold NAT gateways, so with no NAT they are not created, and ``result.spec`` carries an
      empty ``public_subnet_cidrs`` so that the plan cannot build them.
    - Text is never silently repaired: spaces around a CIDR, leading zeros (``10.0.01.0``, which
      some tools read as octal) and ports in quotes are errors whose message gives the fix.
    - A ``version`` key is accepted only with the value 1.

    On success ``result.spec`` holds the canonical values (CIDRs as ``ipaddress`` prints them,
    lists as tuples, tags as a sorted tuple of pairs); warnings never block.
    """
    if not isinstance(data, dict):
        return ValidationResult(
            errors=[
                Issue(
                    "spec",
                    f"the spec must be a JSON object with the fields {', '.join(FIELDS)}; "
                    f"got {json_kind(data)}",
                )
            ]
        )
    checker = _Checker(data)
    checker.run()
    result = ValidationResult(errors=checker.errors, warnings=checker.warnings)
    if not checker.errors:
        result.spec = checker.build_spec()
    return result


# --- implementation ---------------------------------------------------------------------------


def json_kind(value: Any) -> str:
    """Name a decoded JSON value's type the way a user who wrote the JSON thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _show(text: str) -> str:
    """Quote user text for a message, shortened so a pasted novel cannot flood the page."""
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 3] + "..."
    return repr(text)


def _number(value: float) -> str:
    """A number for a message; absurdly large ints (which ``str`` refuses) are not spelled out."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return "that number"
    return repr(value)


def _did_you_mean(value: str, choices: tuple[str, ...] | list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(value.strip().lower(), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _usable(network: ipaddress.IPv4Network) -> int:
    return network.num_addresses - AWS_RESERVED_PER_SUBNET


def _free_range(
    vpc: ipaddress.IPv4Network, prefixlen: int, taken: list[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network | None:
    """The lowest block of ``prefixlen`` inside ``vpc`` that overlaps nothing in ``taken``.

    Jumps past each block it hits instead of trying every candidate, so the cost grows with the
    number of subnets (a handful), not with the size of the VPC.
    """
    if prefixlen < vpc.prefixlen:
        return None
    size = 1 << (32 - prefixlen)
    end = int(vpc.broadcast_address)
    spans = [(int(n.network_address), int(n.broadcast_address)) for n in taken]
    addr = int(vpc.network_address)
    while addr + size - 1 <= end:
        last = addr + size - 1
        hit = next((s for s in spans if s[0] <= last and s[1] >= addr), None)
        if hit is None:
            return ipaddress.IPv4Network((addr, prefixlen))
        addr = -(-(hit[1] + 1) // size) * size
    return None


def _parse_cidr(
    value: Any, example: str, *, in_list: bool = False
) -> tuple[ipaddress.IPv4Network | None, str | None]:
    """Parse one CIDR strictly: ``(network, None)`` or ``(None, message)``.

    ``ipaddress`` alone is too forgiving for user input (it takes ``/024``, netmasks such as
    ``/255.255.0.0`` and, without ``strict``, host bits), so the shape is checked first and each
    kind of mistake gets a message that says how to fix it.
    """
    if not isinstance(value, str):
        return None, f"must be a string like {example}, not {json_kind(value)}"
    text = value
    if not text.strip():
        return None, f"is empty; give a CIDR like {example}" + (", or remove it" if in_list else "")
    if any(c.isspace() for c in text):
        cleaned = "".join(text.split())
        hint = f" ({cleaned})" if _CIDR_RE.fullmatch(cleaned) else ""
        return None, f"{_show(text)} contains spaces; remove them{hint}"
    if ":" in text:
        try:
            ipaddress.IPv6Network(text, strict=False)
        except ValueError:
            pass
        else:
            return None, (
                f"{_show(text)} is an IPv6 range; only IPv4 is supported in spec v1, "
                f"give a CIDR like {example}"
            )
    match = _CIDR_RE.fullmatch(text)
    if match is None:
        if _ADDRESS_RE.fullmatch(text):
            octets = text.split(".")
            like = example
            if all(int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets):
                like = str(
                    ipaddress.IPv4Network(f"{text}/{example.rsplit('/', 1)[1]}", strict=False)
                )
            return None, f"{_show(text)} has no prefix length; write it as a CIDR like {like}"
        return None, f"{_show(text)} is not an IPv4 CIDR like {example}"
    *octets, prefix = match.groups()
    for part in (*octets, prefix):
        if len(part) > 1 and part.startswith("0"):
            fixed = ".".join(str(int(o)) for o in octets) + f"/{int(prefix)}"
            return None, (
                f"{_show(text)} has a leading zero in {part!r} (some tools read that as octal); "
                f"write it as {fixed}"
            )
    bad = [o for o in octets if int(o) > 255]
    if bad:
        return None, (
            f"{_show(text)} is not an IPv4 CIDR like {example}: {bad[0]} is larger than 255"
        )
    length = int(prefix)
    if length > 32:
        return None, (
            f"{_show(text)} is not an IPv4 CIDR like {example}: /{length} is longer than /32"
        )
    if length < MIN_PREFIX:
        return None, (
            f"/{length} is larger than AWS allows; use a prefix from /{MIN_PREFIX} to /{MAX_PREFIX}"
        )
    if length > MAX_PREFIX:
        return None, (
            f"/{length} is smaller than AWS allows; use a prefix from /{MIN_PREFIX} to /{MAX_PREFIX}"
        )
    network = ipaddress.IPv4Network(text, strict=False)
    if str(network) != text:
        return None, f"{text} has host bits set; did you mean {network}?"
    return network, None


def _name_suggestion(text: str) -> str | None:
    """A valid name close to ``text`` (``My_App`` -> ``my-app``), or None."""
    candidate = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    candidate = re.sub(r"^[^a-z]+", "", candidate)[:_NAME_MAX].rstrip("-")
    if candidate != text and _NAME_RE.fullmatch(candidate):
        return candidate
    return None


def _tag_text_ok(text: str) -> bool:
    return all(c.isalnum() or c in TAG_EXTRA_CHARS for c in text)


def _tag_bad_chars(text: str) -> tuple[str, ...]:
    """The characters of ``text`` a tag may not contain, each once, in the order typed."""
    return tuple(dict.fromkeys(c for c in text if not (c.isalnum() or c in TAG_EXTRA_CHARS)))


@dataclass
class _Subnet:
    field: str
    index: int
    network: ipaddress.IPv4Network


class _Checker:
    """One validation run: per-field checks fill ``clean``; cross-field checks read it.

    A field's key is in ``clean`` only if the field passed its own checks, which is what keeps
    the cross-field rules from reporting consequences of an error already reported.
    """

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.clean: dict[str, Any] = {}
        # Parsed subnets per list, and whether the list as a whole (type, length) is valid.
        self.subnets: dict[str, list[_Subnet]] = {f: [] for f in SUBNET_FIELDS}
        self.list_ok: dict[str, bool] = {}
        self.suggested: list[ipaddress.IPv4Network] = []

    def error(
        self,
        field_name: str,
        message: str,
        index: int | None = None,
        *,
        code: str = "",
        key: str | None = None,
        **params: Any,
    ) -> None:
        self.errors.append(
            Issue(field_name, message, index, key, code=code, params=tuple(params.items()))
        )

    def warn(
        self,
        field_name: str,
        message: str,
        index: int | None = None,
        *,
        code: str = "",
        **params: Any,
    ) -> None:
        self.warnings.append(
            Issue(field_name, message, index, code=code, params=tuple(params.items()))
        )

    def run(self) -> None:
        self.check_keys()
        self.check_name()
        self.check_region()
        self.check_vpc()
        self.check_choice("nat", NAT_CHOICES)
        self.check_choice("api_kind", API_KINDS)
        for name in SUBNET_FIELDS:
            self.check_subnet_list(name)
        self.check_port()
        self.check_tags()
        self.check_public_for_nat()
        self.check_api_count()
        self.check_placement()
        self.warn_vpc_range()
        self.warn_availability()
        self.warn_capacity()

    # -- per field --------------------------------------------------------------------------

    def check_keys(self) -> None:
        known = (*FIELDS, "version")
        for key in self.data:
            if not isinstance(key, str):
                self.error("spec", f"has a non-string key {key!r}; field names are strings")
            elif key == "version":
                version = self.data[key]
                if isinstance(version, bool) or not isinstance(version, int) or version != 1:
                    if isinstance(version, str):
                        shown = _show(version)
                    elif isinstance(version, int | float) and not isinstance(version, bool):
                        shown = _number(version)
                    else:
                        shown = json_kind(version)
                    self.error(
                        "spec",
                        f"spec version {shown} is not supported; this Gantry reads spec "
                        f"version {SPEC_VERSION} (give the number 1, or leave version out)",
                        key="version",
                    )
            elif key not in FIELDS:
                hint = _did_you_mean(key, known)
                if not hint:
                    hint = f"; remove it (the fields are {', '.join(FIELDS)})"
                self.error("spec", f"{_show(key)} is not a spec v1 field{hint}", key=key)
        for key in REQUIRED_FIELDS:
            if key not in self.data:
                self.error(key, "is required", code="required")

    def check_name(self) -> None:
        if "name" not in self.data:
            return
        value = self.data["name"]
        if not isinstance(value, str):
            self.error("name", f"must be a string like my-service, not {json_kind(value)}")
            return
        if _NAME_RE.fullmatch(value):
            self.clean["name"] = value
            return
        rule = "use 3 to 40 lowercase letters, digits and hyphens, starting with a letter"
        if len(value) < _NAME_MIN:
            problem = f"{_show(value)} is too short"
        elif len(value) > _NAME_MAX:
            problem = f"{_show(value)} is too long ({len(value)} characters)"
        elif not ("a" <= value[0] <= "z"):
            problem = f"{_show(value)} does not start with a lowercase letter"
        else:
            bad = sorted({c for c in value if c not in _NAME_CHARS})
            shown = " ".join(repr(c) for c in bad[:10])
            problem = f"{_show(value)} has characters that are not allowed ({shown})"
        suggestion = _name_suggestion(value)
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        self.error("name", f"{problem}: {rule}{hint}")

    def check_region(self) -> None:
        if "region" not in self.data:
            self.clean["region"] = DEFAULT_REGION
            return
        value = self.data["region"]
        if not isinstance(value, str):
            self.error("region", f"must be a string like {DEFAULT_REGION}, not {json_kind(value)}")
            return
        if value in REGION_AZ_LETTERS:
            self.clean["region"] = value
            return
        region_of_az = value[:-1]
        if region_of_az in REGION_AZ_LETTERS and value[-1:] in REGION_AZ_LETTERS[region_of_az]:
            self.error(
                "region",
                f"{_show(value)} is an Availability Zone; give its region, {region_of_az}",
            )
            return
        hint = _did_you_mean(value, REGIONS) or f" (for example {DEFAULT_REGION})"
        self.error("region", f"{_show(value)} is not an AWS region code Gantry knows{hint}")

    def check_vpc(self) -> None:
        if "vpc_cidr" not in self.data:
            return
        network, message = _parse_cidr(self.data["vpc_cidr"], "10.0.0.0/16")
        if message is None:
            unusable = next((r for r in UNUSABLE_RANGES if network.overlaps(r[0])), None)
            if unusable is not None:
                message = (
                    f"{network} is in {unusable[0]}, the {unusable[1]}, which cannot hold a VPC; "
                    f"use a private range such as 10.0.0.0/16"
                )
        if message is not None:
            self.error("vpc_cidr", message)
        else:
            self.clean["vpc_cidr"] = network

    def check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if name not in self.data:
            return
        value = self.data[name]
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        if not isinstance(value, str):
            self.error(name, f"must be one of {listed}, not {json_kind(value)}")
        elif value not in choices:
            hint = _did_you_mean(value, choices)
            self.error(name, f"{_show(value)} is not a choice; use {listed}{hint}")
        else:
            self.clean[name] = value

    def az_limit(self) -> tuple[int, str]:
        """How many subnets a list may hold (one per AZ), and who sets that limit."""
        region = self.clean.get("region")
        if region is None:  # the region is wrong and already reported: use the loosest limit
            return MAX_AZS, "no region has more than"
        return len(REGION_AZ_LETTERS[region]), f"{region} has"

    def check_subnet_list(self, name: str) -> None:
        if name not in self.data:
            return
        items = self.data[name]
        if not isinstance(items, list | tuple):
            self.error(
                name, f'must be a list of CIDR strings like ["10.0.1.0/24"], not {json_kind(items)}'
            )
            return
        ok = True
        for index, item in enumerate(items):
            network, message = _parse_cidr(item, "10.0.0.0/24", in_list=True)
            if message is not None:
                self.error(name, message, index)
                ok = False
            else:
                self.subnets[name].append(_Subnet(name, index, network))
        limit, who = self.az_limit()
        if len(items) > limit:
            self.error(
                name,
                f"has {len(items)} subnets but {who} {limit} Availability Zones; "
                f"give at most {limit}, one per AZ",
            )
            # Too many entries: do not also report overlaps among entries that must go anyway.
            self.subnets[name] = []
            ok = False
        elif not items and name != "public_subnet_cidrs":
            self.error(name, 'needs at least one CIDR, e.g. ["10.0.1.0/24"]', code="list_empty")
            ok = False
        self.list_ok[name] = ok

    def check_port(self) -> None:
        if "api_port" not in self.data:
            return
        value = self.data["api_port"]
        example = "e.g. 443"
        if isinstance(value, bool):
            self.error(
                "api_port", f"must be a port number from 1 to 65535 ({example}), not a boolean"
            )
        elif isinstance(value, int):
            if PORT_MIN <= value <= PORT_MAX:
                self.clean["api_port"] = value
            else:
                self.error(
                    "api_port",
                    f"{_number(value)} is out of range; use a port from {PORT_MIN} to {PORT_MAX}",
                )
        elif isinstance(value, float) and value.is_integer() and not PORT_MIN <= value <= PORT_MAX:
            # Not "write 70000 without the decimal point": that would only move the error.
            self.error(
                "api_port",
                f"{value!r} is out of range; use a whole number from {PORT_MIN} to {PORT_MAX}",
            )
        elif isinstance(value, float):
            if value.is_integer():
                fix = f"write {int(value)} without the decimal point"
            else:
                fix = f"give a whole number, {example}"
            self.error("api_port", f"{value!r} is not a whole number; {fix}")
        elif isinstance(value, str) and _PORT_TEXT_RE.fullmatch(value.strip()):
            self.error(
                "api_port",
                f"{_show(value)} is a string; give the port as a number without quotes: "
                f"{int(value.strip())}",
            )
        elif isinstance(value, str):
            # Digits other than 0-9 (Arabic-Indic ٤٤٣, full-width ４４３) are not a port number
            # either: AWS and every tool after it read ASCII digits only.
            self.error(
                "api_port",
                f"{_show(value)} is not a port number; give a whole number from {PORT_MIN} to "
                f"{PORT_MAX}, {example}",
            )
        else:
            self.error(
                "api_port",
                f"must be a port number from 1 to 65535 ({example}), not {json_kind(value)}",
            )

    def check_tags(self) -> None:
        if "tags" not in self.data:
            self.clean["tags"] = ()
            return
        tags = self.data["tags"]
        if not isinstance(tags, dict):
            self.error(
                "tags",
                f'must be an object of string keys and values like {{"team": "payments"}} '
                f"(or {{}} for none), not {json_kind(tags)}",
            )
            return
        ok = True
        if len(tags) > MAX_USER_TAGS:
            self.error(
                "tags",
                f"has {len(tags)} tags; at most {MAX_USER_TAGS} are allowed (AWS allows 50 per "
                f"resource and Gantry adds gantry:deployment, gantry:logical-id and Name)",
            )
            ok = False
        for key, value in tags.items():
            problem = self.tag_problem(key, value)
            if problem is not None:
                message, code, params = problem
                self.error(
                    "tags", message, key=key if isinstance(key, str) else None, code=code, **params
                )
                ok = False
        if ok:
            self.clean["tags"] = tuple(sorted(tags.items()))

    @staticmethod
    def tag_problem(key: Any, value: Any) -> tuple[str, str, dict[str, Any]] | None:
        """``(message, code, params)`` for a tag that breaks a rule, or None."""
        allowed = "letters, digits, spaces and _ . : / = + - @"
        if not isinstance(key, str):
            return f"tag key {key!r} must be a string", "", {}
        shown = _show(key)
        if not 1 <= len(key) <= TAG_KEY_MAX:
            return f"tag key {shown} must be 1 to {TAG_KEY_MAX} characters long", "", {}
        lowered = key.lower()
        for prefix in RESERVED_TAG_PREFIXES:
            if lowered.startswith(prefix):
                owner = "AWS" if prefix == "aws:" else "Gantry, which tags its own resources there"
                return (
                    f"tag key {shown} uses the prefix {prefix!r}, reserved for {owner}; rename it",
                    "",
                    {},
                )
        if key in RESERVED_TAG_KEYS:
            return f"tag key {shown} is set by Gantry on every resource; use another key", "", {}
        if not _tag_text_ok(key):
            return (
                f"tag key {shown} may contain only {allowed}",
                "tag_key_chars",
                {"tag": key, "bad": _tag_bad_chars(key), "allowed": allowed},
            )
        if not isinstance(value, str):
            return (
                f"the value of tag {shown} must be a string (put it in quotes), not "
                f"{json_kind(value)}",
                "",
                {},
            )
        if len(value) > TAG_VALUE_MAX:
            return (
                f"the value of tag {shown} is {len(value)} characters long; "
                f"the limit is {TAG_VALUE_MAX}",
                "",
                {},
            )
        if not _tag_text_ok(value):
            return (
                f"the value of tag {shown} may contain only {allowed}",
                "tag_value_chars",
                {"tag": key, "bad": _tag_bad_chars(value), "allowed": allowed},
            )
        return None

    # -- across fields ----------------------------------------------------------------------

    def check_public_for_nat(self) -> None:
        nat = self.clean.get("nat")
        if nat is None or nat == "none":
            return
        if "public_subnet_cidrs" not in self.data:
            self.error(
                "public_subnet_cidrs",
                f"is required when nat is {nat!r}: NAT gateways live in public subnets; "
                f'give one CIDR per AZ, e.g. ["10.0.0.0/24"], or set nat to "none"',
                code="nat_needs_public",
                nat=nat,
            )
            return
        items = self.data["public_subnet_cidrs"]
        if not isinstance(items, list | tuple):
            return  # already reported as a type error
        if not items:
            self.error(
                "public_subnet_cidrs",
                f"needs at least one CIDR when nat is {nat!r}: NAT gateways live in public "
                f'subnets; add one, e.g. ["10.0.0.0/24"], or set nat to "none"',
                code="nat_needs_public",
                nat=nat,
            )
        elif nat == "per_az":
            lambdas = self.data.get("lambda_subnet_cidrs")
            if self.list_ok.get("lambda_subnet_cidrs") and len(items) < len(lambdas):
                self.error(
                    "public_subnet_cidrs",
                    f"nat 'per_az' puts a NAT gateway in each AZ that has a Lambda subnet: give "
                    f"{len(lambdas)} public subnets (one per Lambda subnet), not {len(items)}; "
                    f"or use nat 'single'",
                    code="per_az_count",
                    need=len(lambdas),
                    given=len(items),
                )

    def check_api_count(self) -> None:
        if self.clean.get("api_kind") != "alb" or not self.list_ok.get("api_subnet_cidrs"):
            return
        count = len(self.data["api_subnet_cidrs"])
        if count < ALB_MIN_SUBNETS:
            self.error(
                "api_subnet_cidrs",
                f"an internal ALB needs subnets in at least {ALB_MIN_SUBNETS} Availability Zones: "
                f"give {ALB_MIN_SUBNETS} or more API subnets (you gave {count}), "
                f"or use api_kind 'ec2'",
                code="alb_count",
                need=ALB_MIN_SUBNETS,
                given=count,
            )

    def check_placement(self) -> None:
        """Every parsed subnet inside the VPC and overlapping no other, one error per subnet."""
        vpc: ipaddress.IPv4Network | None = self.clean.get("vpc_cidr")
        placed = [s for name in SUBNET_FIELDS for s in self.subnets[name]]
        inside: list[_Subnet] = []
        for subnet in placed:
            if vpc is None or subnet.network.subnet_of(vpc):
                inside.append(subnet)
        for subnet in placed:
            if vpc is not None and not subnet.network.subnet_of(vpc):
                self.error(subnet.field, self.outside_message(subnet, vpc, inside), subnet.index)
        for later, subnet in enumerate(inside):
            clash = next((o for o in inside[:later] if o.network.overlaps(subnet.network)), None)
            if clash is None:
                continue
            message = (
                f"{subnet.network} overlaps {clash.field}[{clash.index}] ({clash.network}); "
                f"pick a range that does not overlap"
            )
            free = self.suggest(vpc, subnet, inside)
            if free is not None:
                message += f", e.g. {free}"
            self.error(
                subnet.field,
                message,
                subnet.index,
                code="overlap",
                subnet=str(subnet.network),
                other_field=clash.field,
                other_index=clash.index,
                other=str(clash.network),
                example=str(free) if free is not None else "",
            )

    def outside_message(
        self, subnet: _Subnet, vpc: ipaddress.IPv4Network, inside: list[_Subnet]
    ) -> str:
        if subnet.network.prefixlen < vpc.prefixlen:
            return (
                f"{subnet.network} is larger than the VPC {vpc}; "
                f"pick a smaller range inside the VPC"
            )
        message = f"{subnet.network} is outside the VPC {vpc}; pick a range inside it"
        free = self.suggest(vpc, subnet, inside)
        if free is not None:
            message += f", e.g. {free}"
        return message

    def suggest(
        self, vpc: ipaddress.IPv4Network | None, subnet: _Subnet, inside: list[_Subnet]
    ) -> ipaddress.IPv4Network | None:
        """A free range of the subnet's size, not handed out in an earlier message either."""
        if vpc is None:
            return None
        taken = [o.network for o in inside if o is not subnet] + self.suggested
        free = _free_range(vpc, subnet.network.prefixlen, taken)
        if free is not None:
            self.suggested.append(free)
        return free

    # -- warnings ---------------------------------------------------------------------------

    def warn_vpc_range(self) -> None:
        vpc: ipaddress.IPv4Network | None = self.clean.get("vpc_cidr")
        if vpc is not None and vpc.overlaps(DOCKER_BRIDGE):
            self.warn(
                "vpc_cidr",
                f"{vpc} overlaps {DOCKER_BRIDGE}, Docker's default bridge network: hosts that run "
                f"containers (CI runners, Cloud9, SageMaker) cannot reach addresses in it. "
                f"Prefer another range, e.g. 10.0.0.0/16",
            )
        if vpc is None or any(vpc.subnet_of(block) for block in RFC1918):
            return
        private = "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
        if vpc.subnet_of(CGNAT):
            message = (
                f"{vpc} is in 100.64.0.0/10, the shared address space carriers use for CGNAT "
                f"(RFC 6598), not a private RFC 1918 range; it can clash with addresses your "
                f"network or VPN already uses. Prefer a range in {private}"
            )
        else:
            message = (
                f"{vpc} is outside the private RFC 1918 ranges ({private}); those addresses "
                f"belong to someone on the internet, and your VPC would shadow them. Use a "
                f"private range (100.64.0.0/10, the CGNAT shared space, is not one either)"
            )
        self.warn("vpc_cidr", message)

    def warn_availability(self) -> None:
        nat = self.clean.get("nat")
        lambdas = self.data.get("lambda_subnet_cidrs")
        lambda_azs = len(lambdas) if self.list_ok.get("lambda_subnet_cidrs") else None
        if lambda_azs == 1:
            self.warn(
                "lambda_subnet_cidrs",
                "the Lambda runs in one Availability Zone, so an outage there stops it; add a "
                "second Lambda subnet (one per AZ) for AZ redundancy",
            )
        if nat == "none":
            self.warn(
                "nat",
                "with nat 'none' the Lambda has no internet access, only the VPC and the AWS "
                "services reachable through VPC endpoints (Gantry creates one for Secrets Manager "
                "in every design). Choose 'single' or 'per_az' if the Lambda must call the "
                "internet",
                code="nat_none",
            )
            public = self.data.get("public_subnet_cidrs")
            if isinstance(public, list | tuple) and public:
                self.warn(
                    "public_subnet_cidrs",
                    "public subnets are only used for NAT gateways; with nat 'none' they are not "
                    "created. Remove them, or choose nat 'single' or 'per_az'",
                    code="public_unused",
                )
        if nat == "single" and lambda_azs is not None and lambda_azs >= 2:
            self.warn(
                "nat",
                f"one NAT gateway serves Lambda subnets in {lambda_azs} Availability Zones: if its "
                "AZ fails the others lose internet access, and their traffic pays cross-AZ data "
                "charges. Choose 'per_az' for a NAT gateway in each AZ",
                code="single_nat_azs",
                azs=lambda_azs,
            )

    def warn_capacity(self) -> None:
        """Warn where a subnet has fewer usable addresses than the plan puts in it plus headroom.

        Only Lambda subnets and ALB subnets can be too small; see the constants for why.
        """
        for subnet in self.subnets["lambda_subnet_cidrs"]:
            usable = _usable(subnet.network)
            if usable < LAMBDA_MIN_USABLE:
                # Every design puts the Secrets Manager endpoint's ENI in the Lambda subnets.
                extra = " and the Secrets Manager endpoint's ENI"
                self.warn(
                    "lambda_subnet_cidrs",
                    f"{subnet.network} leaves {usable} usable addresses (AWS reserves "
                    f"{AWS_RESERVED_PER_SUBNET}); it holds the Lambda's Hyperplane ENIs{extra}, "
                    f"and Lambda creates new ENIs when its network settings change and as it "
                    f"scales, failing invocations when the subnet runs out. Use "
                    f"/{LAMBDA_SUBNET_MAX_PREFIX} or larger ({LAMBDA_MIN_USABLE} usable addresses)",
                    subnet.index,
                )
        if self.clean.get("api_kind") != "alb":
            return
        needed = ALB_FREE_ADDRESSES_PER_SUBNET + ASG_INSTANCES_PER_AZ
        for subnet in self.subnets["api_subnet_cidrs"]:
            usable = _usable(subnet.network)
            if subnet.network.prefixlen > ALB_SUBNET_MAX_PREFIX or usable < needed:
                self.warn(
                    "api_subnet_cidrs",
                    f"{subnet.network} leaves {usable} usable addresses (AWS reserves "
                    f"{AWS_RESERVED_PER_SUBNET}); the ALB needs {ALB_FREE_ADDRESSES_PER_SUBNET} "
                    f"free addresses per subnet to add nodes as it scales, plus up to "
                    f"{ASG_INSTANCES_PER_AZ} instances during a rolling replacement, and AWS "
                    f"recommends /{ALB_SUBNET_MAX_PREFIX} or larger for load balancer subnets",
                    subnet.index,
                )

    # -- result -----------------------------------------------------------------------------

    def build_spec(self) -> Spec:
        """The canonical Spec; called only when there are no errors, so every value is clean."""
        nat = self.clean["nat"]
        public = (
            () if nat == "none" else tuple(str(s.network) for s in self.subnets[SUBNET_FIELDS[0]])
        )
        return Spec(
            name=self.clean["name"],
            region=self.clean["region"],
            vpc_cidr=str(self.clean["vpc_cidr"]),
            public_subnet_cidrs=public,
            lambda_subnet_cidrs=tuple(str(s.network) for s in self.subnets["lambda_subnet_cidrs"]),
            api_subnet_cidrs=tuple(str(s.network) for s in self.subnets["api_subnet_cidrs"]),
            api_port=self.clean["api_port"],
            nat=nat,
            api_kind=self.clean["api_kind"],
            tags=self.clean["tags"],
        )
