"""What an error from AWS means for a deployment: retried, or a sentence a person can act on."""

from __future__ import annotations

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from deployer.errors import Fatal, Retry, classify


def client_error(code: str, status: int, message: str = "msg") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateVpc",
    )


def test_throttling_and_server_errors_are_retried():
    assert isinstance(classify(client_error("RequestLimitExceeded", 503)), Retry)
    assert isinstance(classify(client_error("SomethingNew", 502)), Retry)


def test_an_html_error_page_instead_of_an_aws_answer_is_retried():
    # What a proxy or a crashed emulator returns: botocore cannot parse it.
    exc = ResponseParserError("Unable to parse response, invalid XML received: <!doctype html>")
    result = classify(exc)
    assert isinstance(result, Retry)
    assert "server error" in result.reason


def test_a_refusal_is_a_sentence_with_the_aws_code_beside_it():
    result = classify(client_error("VpcLimitExceeded", 400, "limit of 5"))
    assert isinstance(result, Fatal)
    assert result.text().startswith("The account has reached its limit of VPCs")
    assert "VpcLimitExceeded: limit of 5" in result.text()


def test_dependency_violation_is_waited_out():
    result = classify(client_error("DependencyViolation", 400, "has dependencies"))
    assert isinstance(result, Retry) and result.patient
