"""``AWS::CertificateManager::Certificate`` (``meta["imported"]``): the ALB listener's certificate,
self-signed and imported into ACM.

Why self-signed: an internal ALB's name (``internal-....<region>.elb.amazonaws.com``) cannot be
DNS-validated by ACM, and a private CA costs hundreds of dollars a month. Imported certificates
are free. The Lambda accepts the certificate without verifying it (see its handler): the traffic
never leaves the VPC and the security groups admit only the function, so TLS protects the
credential on the wire rather than authenticating the server.

The certificate: RSA 2048, one year, ``CN=<deployment tag>.internal`` (so it is recognisable in
the ACM console), subject alternative names = the plan's ``DomainName``
(``*.<region>.elb.amazonaws.com``, which matches the ALB's name) and ``*.elb.amazonaws.com``.
The private key exists only in memory for the ImportCertificate call: it is never written to
disk, logged or stored by Gantry.

Physical id: the certificate ARN (CloudFormation's ``Ref``). ImportCertificate has no
idempotency token; a duplicate left by a lost response is found by its gantry tags and removed
by the engine. Delete: ``ResourceInUseException`` while the listener that uses it is still being
deleted becomes ``RetryLater``.

Read: ACM's ``DomainName`` of an imported certificate is its common name (the deployment's
``.internal`` one); the plan's ``DomainName`` is the first subject alternative name, and that is
what read reports under it. Only the tags change in place (AddTagsToCertificate /
RemoveTagsFromCertificate); everything else of a certificate is create-only.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deployer.resources._compute import node_tags, tag_changes, tag_list
from deployer.resources._ec2 import error_code
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
    tag_map,
)
from designer.graph import ResourceNode

VALIDITY = datetime.timedelta(days=365)
#: A certificate is valid from a little before now, so a clock slightly behind still accepts it.
BACKDATE = datetime.timedelta(minutes=5)
#: X.509 limits a common name to 64 characters.
CN_MAX = 64
UNUSABLE = {"EXPIRED", "REVOKED", "FAILED", "INACTIVE", "VALIDATION_TIMED_OUT"}


def self_signed_pem(common_name: str, dns_names: list[str]) -> tuple[bytes, bytes]:
    """``(certificate PEM, private key PEM)`` of a new self-signed server certificate.

    The key is returned to the caller only to be handed to ACM; it is unencrypted because ACM
    imports only unencrypted keys.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:CN_MAX]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gantry"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    unique_names = list(dict.fromkeys(dns_names))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in unique_names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _describe(ctx: AwsContext, arn: str) -> dict[str, Any] | None:
    try:
        return ctx.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


class CertificateHandler:
    type: ClassVar[str] = "AWS::CertificateManager::Certificate"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # ACM cannot filter by tag: list (imported RSA 2048 certificates only) and check tags.
        acm = ctx.client("acm")
        paginator = acm.get_paginator("list_certificates")
        found = []
        for page in paginator.paginate(Includes={"keyTypes": ["RSA_2048"]}):
            for summary in page["CertificateSummaryList"]:
                if summary.get("Type", "IMPORTED") != "IMPORTED":
                    continue
                arn = summary["CertificateArn"]
                try:
                    tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags")
                except ClientError as exc:
                    if error_code(exc) == "ResourceNotFoundException":
                        continue  # deleted since the listing
                    raise
                if ctx.owns(node, tags):
                    found.append(arn)
        return found

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        domain = props.get("DomainName") or f"*.{ctx.region}.elb.amazonaws.com"
        certificate, private_key = self_signed_pem(
            f"{ctx.deployment_tag}.internal", [domain, "*.elb.amazonaws.com"]
        )
        arn = ctx.client("acm").import_certificate(
            Certificate=certificate,
            PrivateKey=private_key,
            Tags=tag_list(node_tags(ctx, node, props)),
        )["CertificateArn"]
        del private_key  # nothing keeps the key beyond the import call
        return arn

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        certificate = _describe(ctx, physical_id)
        if certificate is None:
            return Pending("waiting for ACM to show the imported certificate")
        status = certificate.get("Status", "ISSUED")
        if status in UNUSABLE:
            reason = certificate.get("FailureReason") or status.lower().replace("_", " ")
            return Failed(f"the imported certificate is not usable: {reason}")
        if status != "ISSUED":
            return Pending(f"certificate is {status.lower().replace('_', ' ')}")
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        certificate = _describe(ctx, physical_id)
        if certificate is None:
            return None
        try:
            tags = ctx.client("acm").list_tags_for_certificate(CertificateArn=physical_id)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None  # deleted since the describe
            raise
        names = certificate.get("SubjectAlternativeNames") or [certificate.get("DomainName")]
        return {"DomainName": names[0], "Tags": tag_list(tag_map(tags.get("Tags")))}

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        if before.get("DomainName", after.get("DomainName")) != after.get("DomainName"):
            raise CannotUpdate(
                "a certificate's domain name cannot change; it is replaced by a new certificate"
            )
        if "Tags" not in after:
            return
        to_set, to_remove = tag_changes(before.get("Tags"), after["Tags"])
        acm = ctx.client("acm")
        if to_set:
            acm.add_tags_to_certificate(CertificateArn=physical_id, Tags=tag_list(to_set))
        if to_remove:
            acm.remove_tags_from_certificate(
                CertificateArn=physical_id, Tags=[{"Key": key} for key in to_remove]
            )

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("acm").delete_certificate(CertificateArn=physical_id)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return
            if code == "ResourceInUseException":
                raise RetryLater(
                    "the certificate is still attached to the load balancer's listener, which "
                    "is being deleted (ACM sees the release within a few minutes)"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _describe(ctx, physical_id) is None:
            return Gone()
        return Pending("certificate is being deleted")


HANDLER = CertificateHandler()
