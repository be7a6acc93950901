"""nginx's TLS certificate: a self-signed one made on first start, unless one is there already.

Compose runs this as the one-shot ``edge-tls-init`` before nginx starts, into the directory nginx
reads ``fullchain.pem`` and ``privkey.pem`` from (the ``edge-tls`` volume, or the host directory
``FITNESS_EDGE_TLS_DIR`` names). When both files exist it changes nothing, so a certificate of
your own put there stays; when neither does, it writes a self-signed one (ECDSA P-256, 825 days)
for ``localhost``, ``127.0.0.1`` and the names given. One without the other is refused: that is a
half-copied certificate of yours, not something to overwrite.

The key is made readable by its group (0640): compose runs this with nginx's group, so nginx,
running as its own non-root user, can read it and nobody else can. It builds the certificate as
``fitness.mtls`` builds the services', and ships in our image with it:

    python -m fitness.edge_tls DIRECTORY [--name api.example.com ...]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fitness import mtls

CERTIFICATE = "fullchain.pem"
KEY = "privkey.pem"
DEFAULT_NAMES = ("localhost", "127.0.0.1")
DAYS = 825  # the longest validity Apple's clients accept for a server certificate


class HalfACertificate(RuntimeError):
    """Raised when only one of the certificate and its key is in the directory."""


def ensure(directory: Path, names: list[str], days: int = DAYS) -> bool:
    """Write a self-signed certificate for ``names`` unless one is there; True if written."""
    directory.mkdir(parents=True, exist_ok=True)
    present = [name for name in (CERTIFICATE, KEY) if (directory / name).exists()]
    if len(present) == 2:
        return False
    if present:
        raise HalfACertificate(
            f"{directory} has {present[0]} alone: put both {CERTIFICATE} and {KEY} there, or "
            "remove it to have a self-signed pair made"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(key, names, days)
    # The key first: a certificate without its key would not be replaced by a later run.
    _write(directory / KEY, mtls.pem_key(key), 0o640)
    _write(directory / CERTIFICATE, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def self_signed(key: ec.EllipticCurvePrivateKey, names: list[str], days: int) -> x509.Certificate:
    """Return a server certificate for ``names`` signed by its own ``key``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    public = key.public_key()
    return (
        mtls.certificate_builder(subject, subject, public, days)
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        # Not a CA: browsers refuse a CA certificate as a server's. Clients that trust this
        # very file (curl --cacert) take it as its own anchor all the same.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(mtls.key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    alt_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # in order, once each
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    return alt_names


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file ``path`` with ``mode`` (never over an existing one)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(path, mode)  # whatever the umask took away


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitness.edge_tls", description=__doc__.split("\n")[0]
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--name", action="append", default=[], help="a DNS name or IP address")
    args = parser.parse_args(argv)
    names = [*filter(None, args.name), *DEFAULT_NAMES]
    try:
        made = ensure(args.directory, names)
    except (HalfACertificate, OSError) as exc:
        print(f"edge-tls: {exc}", file=sys.stderr)
        return 1
    if made:
        print(f"edge-tls: made a self-signed certificate for {', '.join(names)}")
    else:
        print(f"edge-tls: keeping the certificate in {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
