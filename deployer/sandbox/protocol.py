"""Who is calling what, and how to answer in that service's own error format.

The sandbox never re-signs or verifies requests; it only reads them to know which AWS service
and action they are, because every behaviour and every injected fault depends on that:

- the service and region come from the SigV4 credential scope
  (``Credential=AKID/20240101/us-east-1/ec2/aws4_request``), in the ``Authorization`` header or,
  for presigned URLs, the ``X-Amz-Credential`` query parameter;
- the action comes from ``X-Amz-Target`` (JSON protocol: Secrets Manager, CloudWatch Logs,
  ACM), the ``Action`` form field (EC2 and the query protocol: IAM, ELBv2, Auto Scaling, STS),
  or method + path for REST services (Lambda), matched against botocore's own service model so
  every Lambda route is known without a hand-kept table.

Errors the sandbox makes up (throttling, 5xx, the AWS refusals moto lacks) must look exactly like
the real service's, or botocore would not parse the code, and its standard retry mode would not
recognise throttling. :func:`error_reply` builds them per protocol.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

log = logging.getLogger("deployer.sandbox")

#: EC2's own dialect of the query protocol (its error envelope differs from the others').
EC2 = "ec2"
#: The AWS query protocol (form body in, XML out): IAM, ELBv2, Auto Scaling, STS, ...
QUERY = "query"
#: The AWS JSON protocol (``X-Amz-Target``): Secrets Manager, CloudWatch Logs, ACM, ...
JSON = "json"
#: REST with JSON bodies: Lambda.
REST_JSON = "rest-json"
#: Not an AWS call the sandbox can identify; forwarded untouched and never faulted.
UNKNOWN = "unknown"

_CREDENTIAL = re.compile(
    r"(?:^|[\s,])Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request"
)
_SCOPE = re.compile(
    r"^(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$"
)


@dataclass
class Reply:
    """An HTTP answer: moto's, a rewritten one, or one the sandbox made up.

    ``drop`` means "close the connection without answering", the way a response is lost in
    transit.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    drop: bool = False

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), if any."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer: the only ones that mean the call took effect."""
        return 200 <= self.status < 300


@dataclass
class Call:
    """One identified AWS API call.

    ``params`` holds the form fields (and query-string fields) of query-protocol calls, with the
    last value winning, which is how AWS reads them too; ``path_params`` holds the URI labels of
    REST calls (``FunctionName``); ``json_body`` the parsed body of JSON and REST-JSON calls.
    """

    method: str
    path: str
    query: str
    service: str | None = None
    region: str | None = None
    action: str | None = None
    protocol: str = UNKNOWN
    params: dict[str, str] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    json_body: Any = None

    @property
    def label(self) -> str:
        """``service:Action``, the name faults and stats are keyed by."""
        return f"{self.service or '?'}:{self.action or '?'}"

    def is_(self, service: str, action: str) -> bool:
        """True when this is ``action`` of ``service`` (signing name, e.g. ``elasticloadbalancing``)."""
        return self.service == service and self.action == action


def _header(headers: Any, name: str) -> str | None:
    """A header from an ``email.message.Message`` or a list of pairs, case-insensitively."""
    if hasattr(headers, "get"):
        value = headers.get(name)
        return None if value is None else str(value)
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


def identify(method: str, target: str, headers: Any, body: bytes) -> Call:
    """Work out service, region, action and protocol of a request; never raises.

    Anything that cannot be identified stays ``UNKNOWN`` and is simply forwarded.
    """
    split = urlsplit(target)
    call = Call(method=method.upper(), path=split.path or "/", query=split.query)
    try:
        _identify_into(call, headers, body)
    except Exception:  # an odd request must never break the proxy
        log.debug("could not identify %s %s", call.method, call.path, exc_info=True)
    return call


def _identify_into(call: Call, headers: Any, body: bytes) -> None:
    query_pairs = parse_qsl(call.query, keep_blank_values=True)
    call.query_params = dict(query_pairs)

    auth = _header(headers, "Authorization") or ""
    match = _CREDENTIAL.search(auth)
    if match is None and "X-Amz-Credential" in call.query_params:
        match = _SCOPE.match(call.query_params["X-Amz-Credential"])
    if match is not None:
        call.service = match.group("service").lower()
        call.region = match.group("region")

    target = _header(headers, "X-Amz-Target")
    content_type = (_header(headers, "Content-Type") or "").lower()
    if target:
        call.protocol = JSON
        call.action = target.rsplit(".", 1)[-1] or None
        call.json_body = _json_or_none(body)
        return

    params = dict(query_pairs)
    if content_type.startswith("application/x-www-form-urlencoded") or (
        not content_type and body[:7] == b"Action="
    ):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if "Action" in params:
        call.params = params
        call.action = params["Action"] or None
        call.protocol = EC2 if call.service == "ec2" else QUERY
        return

    if call.service is None:
        return
    routed = route_rest(call.service, call.method, call.path)
    if routed is not None:
        call.action, call.path_params = routed
        call.protocol = REST_JSON
        call.json_body = _json_or_none(body)


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- REST routing from botocore's service model -------------------------------------------------


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    specificity: int


@functools.cache
def _rest_routes(service: str) -> tuple[_Route, ...]:
    """Every operation of a REST service as a regex over the raw (still %-encoded) path.

    botocore ships the model of each service, with ``requestUri`` templates such as
    ``/2015-03-31/functions/{FunctionName}/configuration``; using them means no hand-kept route
    table can drift from what boto3 actually sends.
    """
    try:
        import botocore.session

        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # unknown service name, or botocore missing: no REST routing for it
        return ()
    if model.metadata.get("protocol") not in ("rest-json", "rest-xml"):
        return ()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http.get("requestUri", "/")).split("?", 1)[0].rstrip("/")
        regex, literal = "", 0
        for part in re.split(r"(\{[^}]+\})", uri):
            if part.startswith("{") and part.endswith("}"):
                label = part[1:-1]
                greedy = label.endswith("+")
                label = re.sub(r"\W", "_", label.rstrip("+"))
                regex += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
            else:
                regex += re.escape(part)
                literal += len(part)
        pattern = re.compile("^" + regex + "/?$")
        routes.append(_Route(str(http.get("method", "GET")).upper(), pattern, name, literal))
    return tuple(routes)


def route_rest(service: str, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The REST operation name and URI labels for ``method path``, or ``None``.

    When several templates match, the one with the most literal characters wins, so
    ``/functions/{FunctionName}/configuration`` beats ``/functions/{FunctionName}``.
    """
    best: tuple[int, str, dict[str, str]] | None = None
    for route in _rest_routes(service):
        if route.method != method.upper():
            continue
        match = route.pattern.match(path)
        if match is None:
            continue
        if best is None or route.specificity > best[0]:
            labels = {key: unquote(value) for key, value in match.groupdict().items()}
            best = (route.specificity, route.operation, labels)
    return None if best is None else (best[1], best[2])


# --- Errors in each protocol's own shape ---------------------------------------------------------


def request_id() -> str:
    """A fresh AWS-looking request id."""
    return str(uuid.uuid4())


def error_reply(call: Call, status: int, code: str, message: str) -> Reply:
    """An AWS error answer in ``call``'s protocol, so botocore parses ``code`` and ``message``.

    4xx errors are the caller's fault (``Sender`` / ``User``), 5xx the service's.
    """
    rid = request_id()
    sender = status < 500
    if call.protocol == EC2:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode()
        return Reply(status, [("Content-Type", "text/xml;charset=UTF-8")], body)
    if call.protocol == QUERY:
        body = (
            f"<ErrorResponse><Error><Type>{'Sender' if sender else 'Receiver'}</Type>"
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        return Reply(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body)
    if call.protocol == REST_JSON:
        payload = {"Type": "User" if sender else "Service", "message": message}
        return Reply(
            status,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", rid),
            ],
            json.dumps(payload).encode(),
        )
    payload = {"__type": code, "message": message}
    return Reply(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", rid),
        ],
        json.dumps(payload).encode(),
    )


def throttle_reply(call: Call) -> Reply:
    """The service's own "slow down" answer; every code here is in botocore's throttling list."""
    if call.protocol == EC2:
        return error_reply(call, 503, "RequestLimitExceeded", "Request limit exceeded.")
    if call.protocol == QUERY:
        return error_reply(call, 400, "Throttling", "Rate exceeded")
    if call.protocol == REST_JSON:
        return error_reply(call, 429, "TooManyRequestsException", "Rate exceeded")
    return error_reply(call, 400, "ThrottlingException", "Rate exceeded")


def server_error_reply(call: Call, status: int) -> Reply:
    """A 500 (internal error) or 503 (service unavailable) answer in the call's protocol."""
    if status == 503:
        return error_reply(
            call, 503, "ServiceUnavailable", "The service is unavailable. Please try again shortly."
        )
    code = "ServiceException" if call.protocol == REST_JSON else "InternalError"
    return error_reply(call, 500, code, "An internal error has occurred.")


def bad_gateway_reply() -> Reply:
    """What a load balancer in front of AWS answers when the backend's response never came."""
    return Reply(
        502,
        [("Content-Type", "text/html")],
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
