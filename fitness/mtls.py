"""Mutual TLS on every gRPC channel: a private CA, one certificate per role, who may call what.

Every gRPC server requires a client certificate from the project's CA and refuses plaintext;
every client presents its role's certificate and checks that the server's names the service it
meant to reach. The role is the certificate's common name; ``CALLERS`` says which roles may call
each method, and the server interceptor (``fitness.rpc``) refuses any other with
PERMISSION_DENIED.

The material lives in ``TLS_DIR`` (default ``DATA_DIR/secrets/tls``): ``ca.crt`` and, per role,
``<role>.crt`` and ``<role>.key``. In development the first process that needs it creates it
(``ensure_material``, under a file lock, as ``make up`` does before starting anything); in
production it must exist (compose's ``tls-init`` job makes it into a volume).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("user_service", "activity_service", "gateway")
_EVERY_ROLE = frozenset(ROLES)
_GATEWAY = frozenset({"gateway"})

# Who may call each gRPC method: the one table (docs/security.md shows it too). A method missing
# here is refused to everyone.
CALLERS: dict[str, frozenset[str]] = {
    "/fitness.v1.UserService/RegisterUser": _GATEWAY,
    "/fitness.v1.UserService/GetUser": frozenset({"activity_service", "gateway"}),
    "/fitness.v1.UserService/GetUserGoal": _GATEWAY,
    "/fitness.v1.UserService/ListUserGoals": frozenset({"activity_service", "gateway"}),
    "/fitness.v1.UserService/CreateGoal": _GATEWAY,
    "/fitness.v1.UserService/UpdateGoal": _GATEWAY,
    "/fitness.v1.UserService/CancelGoal": _GATEWAY,
    "/fitness.v1.UserService/DeleteGoal": _GATEWAY,
    "/fitness.v1.UserService/RestoreGoal": _GATEWAY,
    "/fitness.v1.UserService/RecordWorkout": frozenset({"activity_service"}),
    "/fitness.v1.UserService/RecordWorkouts": frozenset({"activity_service"}),
    "/fitness.v1.ActivityService/StartWorkoutSession": _GATEWAY,
    "/fitness.v1.ActivityService/EndWorkoutSession": _GATEWAY,
    "/fitness.v1.ActivityService/GetUserStatistics": _GATEWAY,
    "/fitness.v1.ActivityService/ApplyGoal": _GATEWAY,
    "/fitness.v1.ActivityService/SaveGroupSession": _GATEWAY,
    "/grpc.health.v1.Health/Check": _EVERY_ROLE,
    "/grpc.health.v1.Health/Watch": _EVERY_ROLE,
}

CA_DAYS = 3650
CERT_DAYS = 825


class MissingMaterial(RuntimeError):
    """The certificates a process needs are not there (production does not make them)."""


@dataclass(frozen=True)
class Identity:
    """One role's key and certificate, and the CA that vouches for every role."""

    role: str
    key: bytes
    certificate: bytes
    ca: bytes


def directory(settings: dict[str, Any]) -> Path:
    """Return where the CA and the roles' certificates are (``TLS_DIR`` or under DATA_DIR)."""
    return Path(settings.get("TLS_DIR") or Path(settings["DATA_DIR"]) / "secrets" / "tls")


def identity(settings: dict[str, Any], role: str) -> Identity:
    """Return ``role``'s identity, creating the material first in development."""
    folder = directory(settings)
    if settings.get("ENV") != "production":
        ensure_material(folder)
    try:
        return Identity(
            role=role,
            key=(folder / f"{role}.key").read_bytes(),
            certificate=(folder / f"{role}.crt").read_bytes(),
            ca=(folder / "ca.crt").read_bytes(),
        )
    except FileNotFoundError as exc:
        raise MissingMaterial(f"no TLS material for {role}: {exc.filename} is missing") from None


def ensure_material(folder: Path) -> None:
    """Create the CA and each role's certificate once; later calls change nothing."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # replicas starting together make one CA, not several
        if not (folder / "ca.crt").exists():
            _write_material(folder)


def _write_material(folder: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fitness-goal-tracker CA")])
    ca = (
        certificate_builder(ca_name, ca_name, ca_key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)])
        certificate = (
            certificate_builder(name, ca_name, key.public_key(), CERT_DAYS)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(role)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(folder / f"{role}.key", pem_key(key), secret=True)
        _write(folder / f"{role}.crt", certificate.public_bytes(serialization.Encoding.PEM))
    # The CA's key is not kept: nothing signs again (delete the folder to make all anew).
    _write(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))


def certificate_builder(subject, issuer, public_key, days: int) -> x509.CertificateBuilder:
    """Start a certificate valid from five minutes ago (clocks differ) for ``days``."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def key_usage(ca: bool) -> x509.KeyUsage:
    """Return what a CA's key (signing certificates) or a peer's key (TLS) may be used for."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 PEM (files only its owner may read keep it safe)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, secret: bool = False) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(content)
    os.chmod(partial, 0o600 if secret else 0o644)
    partial.replace(path)


def server_credentials(me: Identity) -> grpc.ServerCredentials:
    """Return credentials that require a client certificate from the CA."""
    return grpc.ssl_server_credentials(
        [(me.key, me.certificate)], root_certificates=me.ca, require_client_auth=True
    )


def channel(target: str, me: Identity, server_role: str) -> grpc.Channel:
    """Open a channel to ``target`` as ``me``, accepting only ``server_role``'s certificate."""
    credentials = grpc.ssl_channel_credentials(me.ca, me.key, me.certificate)
    # Targets are addresses (127.0.0.1:50051, user_service_1:50051); the name checked is the role.
    # A name with several addresses (Kubernetes' headless Service: one per pod) gets every call
    # spread over all of them, not pinned to the first that answered.
    options = [
        ("grpc.ssl_target_name_override", server_role),
        ("grpc.lb_policy_name", "round_robin"),
    ]
    return grpc.secure_channel(target, credentials, options=options)


def caller_role(context: grpc.ServicerContext) -> str | None:
    """Return the role named by the caller's certificate (None: no certificate)."""
    names = context.auth_context().get("x509_common_name") or []
    return names[0].decode() if names else None


def main() -> None:
    """``python -m fitness.mtls DIR``: make the CA and the roles' certificates in DIR, once."""
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m fitness.mtls DIR")
    ensure_material(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
