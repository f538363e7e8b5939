"""Test tool: makes the certificates the TLS tests use, with a CA of their own.

    make_certs.py DIR

writes into DIR (PEM files):
  ca.pem                       the test CA (what clients are told to trust)
  other-ca.pem                 a second CA that signed nothing the servers present (wrong CA)
  server.pem, server.key       a server certificate for `localhost` only (so 127.0.0.1 is the
                               wrong host), signed by the test CA
  expired.pem, expired.key     the same, expired yesterday
  client.pem, client.key       a client certificate for two-way TLS, signed by the test CA

Built on the `cryptography` package; nothing here is used outside the tests.
"""
import datetime
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def key():
    return ec.generate_private_key(ec.SECP256R1())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca(cn):
    k = key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(k, hashes.SHA256())
    )
    return k, cert


def leaf(ca_key, ca_cert, cn, usage, not_before, not_after, dns=None):
    k = key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return k, builder.sign(ca_key, hashes.SHA256())


def write(dir, stem, k, cert):
    (dir / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if k is not None:
        (dir / f"{stem}.key").write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = ca("vecmigrate test CA")
    write(out, "ca", None, ca_cert)
    _, other = ca("vecmigrate other CA")
    write(out, "other-ca", None, other)
    server = ExtendedKeyUsageOID.SERVER_AUTH
    write(out, "server", *leaf(ca_key, ca_cert, "localhost", server, NOW - DAY, NOW + 30 * DAY, ["localhost"]))
    write(out, "expired", *leaf(ca_key, ca_cert, "localhost", server, NOW - 30 * DAY, NOW - DAY, ["localhost"]))
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    write(out, "client", *leaf(ca_key, ca_cert, "vecmigrate test client", client, NOW - DAY, NOW + 30 * DAY))


if __name__ == "__main__":
    main()
