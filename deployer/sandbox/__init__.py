"""The Gantry sandbox: an HTTP proxy in front of the moto server that behaves like AWS in time.

moto answers every call at once: NAT gateways, instances, load balancers and VPC Lambda
functions are ready the instant they are created, deletes that AWS refuses succeed, ClientTokens
are ignored and nothing is ever throttled or lost. Gantry's reconciler exists because AWS does all
of those things, so it must be exercised against them; this proxy adds them back, scaled in
time so a demo or a test does not wait real minutes.

Run it with ``python -m deployer.sandbox --listen 127.0.0.1:4566 --upstream
http://127.0.0.1:5000 --time-scale 0.1`` and point ``AWS_ENDPOINT_URL`` at it; see
:mod:`deployer.sandbox.proxy` for the control API and :mod:`deployer.sandbox.behaviours` for
what is simulated.
"""

from deployer.sandbox.proxy import SandboxProxy
from deployer.sandbox.state import DURATIONS, ConfigError, SandboxConfig, SandboxState

__all__ = ["DURATIONS", "ConfigError", "SandboxConfig", "SandboxProxy", "SandboxState"]
