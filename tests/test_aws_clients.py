"""boto3 clients are made once per process and shared by its threads: making one costs tens of
milliseconds of CPU, and a client per thread made every new AWS thread of every worker process
pay it again (the benchmark's many-at-once runs spent a quarter of the worker's CPU there).
No AWS call is made: creating a client talks to no endpoint."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from deployer.aws import client_factory


def test_threads_share_one_client_per_service_and_endpoint():
    factory = client_factory(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: factory("ec2"), range(16)))
    assert all(client is made[0] for client in made)
    # Another factory for the same place (the next pass) gets the same client.
    again = client_factory(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert again("ec2") is made[0]


def test_clients_are_kept_apart_by_service_region_and_endpoint():
    one = client_factory(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    other_region = client_factory(region="us-west-2", endpoint_url="http://127.0.0.1:9")
    other_endpoint = client_factory(region="eu-west-1", endpoint_url="http://127.0.0.1:8")
    assert one("ec2") is not one("iam")
    assert other_region("ec2").meta.region_name == "us-west-2"
    assert other_endpoint("ec2").meta.endpoint_url == "http://127.0.0.1:8"
    assert one("ec2").meta.endpoint_url == "http://127.0.0.1:9"
