"""``python -m deployer.sandbox``: run the sandbox proxy in front of a moto server.

Defaults come from the environment so ``make run`` and docker-compose can set them without
flags: ``GANTRY_SANDBOX_TIME_SCALE`` (1.0: real AWS durations) and
``GANTRY_SANDBOX_ENI_HOLD_SECONDS`` (1200: AWS's "up to 20 minutes").
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from deployer.sandbox.proxy import SandboxProxy
from deployer.sandbox.state import DEFAULT_ENI_HOLD_SECONDS, DURATIONS, SandboxConfig

log = logging.getLogger("deployer.sandbox")


def _address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``port`` (host defaults to 127.0.0.1)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is out of range")
    return (host.strip("[]") or "127.0.0.1", number)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return _non_negative(raw)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deployer.sandbox",
        description="An HTTP proxy in front of the moto server that adds AWS's real timing "
        "(NAT gateways, instances, VPC Lambdas and their updates, load balancers, IAM "
        "propagation, Lambda network interfaces), Auto Scaling instance refreshes and, on "
        "demand, throttling, 5xx and lost responses. Control API: "
        "/_sandbox/config, /_sandbox/reset, /_sandbox/stats, /_sandbox/resources.",
    )
    parser.add_argument(
        "--listen",
        type=_address,
        default=("127.0.0.1", 4566),
        help="host:port to listen on (default 127.0.0.1:4566)",
    )
    parser.add_argument(
        "--upstream",
        default="http://127.0.0.1:5000",
        help="the moto server's URL (default http://127.0.0.1:5000)",
    )
    parser.add_argument(
        "--time-scale",
        type=_non_negative,
        default=_env_float("GANTRY_SANDBOX_TIME_SCALE", 1.0),
        help="multiplier on AWS durations, e.g. 0.1 makes a 90 s NAT gateway take 9 s "
        "(default $GANTRY_SANDBOX_TIME_SCALE or 1.0)",
    )
    parser.add_argument(
        "--eni-hold-seconds",
        type=_non_negative,
        default=_env_float("GANTRY_SANDBOX_ENI_HOLD_SECONDS", DEFAULT_ENI_HOLD_SECONDS),
        help="real seconds a deleted VPC Lambda's network interfaces keep its subnets and "
        "security groups (before the time scale; default $GANTRY_SANDBOX_ENI_HOLD_SECONDS or "
        f"{DEFAULT_ENI_HOLD_SECONDS:g})",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=_env_float("GANTRY_SANDBOX_LATENCY_MS", 0.0),
        help="milliseconds added to every AWS call, a region's round trip (not scaled; "
        "default $GANTRY_SANDBOX_LATENCY_MS or 0)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("GANTRY_SANDBOX_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SandboxConfig(
        time_scale=args.time_scale,
        eni_hold_seconds=args.eni_hold_seconds,
        latency_ms=args.latency_ms,
    )
    try:
        proxy = SandboxProxy(args.listen, args.upstream, config=config)
    except (OSError, ValueError) as exc:
        log.error("cannot start the sandbox on %s:%s: %s", *args.listen, exc)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        proxy.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    durations = ", ".join(
        f"{name} {seconds * args.time_scale:g}s" for name, seconds in DURATIONS.items()
    )
    log.info(
        "sandbox listening on %s -> %s (time scale %g: %s; Lambda ENI hold %gs)",
        proxy.url,
        args.upstream,
        args.time_scale,
        durations,
        args.eni_hold_seconds * args.time_scale,
    )
    proxy.serve_forever()
    log.info("sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
