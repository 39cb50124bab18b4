"""Helpers for the attestation tests: documents and chains made by the openssl CLI, independent of our code.

Neither the certificates nor the CMS structures made here come from hcibenefit, so a verifier that only agrees
with our own signer would fail against them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hcibenefit.attestation.content import format_imds_timestamp

NONCE = "1234567890"

_EXTENSIONS = """\
[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:test.metadata.azure.com
"""


def openssl(*args: str | Path) -> bytes:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(
            f"openssl {' '.join(map(str, args))} failed: {done.stderr.decode(errors='replace')}"
        )
    return done.stdout


@dataclass(frozen=True)
class OpensslChain:
    """root -> intermediate -> leaf (SAN test.metadata.azure.com), all made by the openssl CLI."""

    directory: Path
    root: Path
    intermediate: Path
    leaf: Path
    leaf_key: Path

    def sign(
        self, content: bytes, *, attributes: bool, embed: tuple[Path, ...] = (), keyid: bool = False
    ) -> bytes:
        """A DER CMS SignedData over ``content`` from ``openssl cms -sign``; ``embed`` adds certificates."""
        source = self.directory / "content.bin"
        source.write_bytes(content)
        args: list[str | Path] = ["cms", "-sign", "-binary", "-nodetach", "-in", source]
        args += ["-signer", self.leaf, "-inkey", self.leaf_key, "-outform", "DER"]
        if not attributes:
            args.append("-noattr")
        if embed:
            bundle = self.directory / "embed.pem"
            bundle.write_bytes(b"".join(p.read_bytes() for p in embed))
            args += ["-certfile", bundle]
        if keyid:
            args.append("-keyid")
        return openssl(*args)


def _key(path: Path, kind: str) -> Path:
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return path


def make_openssl_chain(directory: Path, kind: str, *, root_name: str | None = None) -> OpensslChain:
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "ext.cnf"
    cnf.write_text(_EXTENSIONS)
    label = kind.upper()
    root_key, inter_key, leaf_key = (_key(directory / f"{n}.key", kind) for n in ("root", "inter", "leaf"))
    root, inter, leaf = (directory / f"{n}.pem" for n in ("root", "inter", "leaf"))
    openssl(
        "req", "-new", "-x509", "-key", root_key, "-subj", f"/CN={root_name or f'Test {label} Root'}",
        "-days", "30", "-config", cnf, "-extensions", "v3_root", "-out", root,
    )  # fmt: skip
    for key, cert, issuer, issuer_key, subject, ext, serial in (
        (inter_key, inter, root, root_key, f"Test {label} Intermediate", "v3_inter", "0x1001"),
        (leaf_key, leaf, inter, inter_key, "test.metadata.azure.com", "v3_leaf", "0x2002"),
    ):
        csr = directory / f"{ext}.csr"
        openssl("req", "-new", "-key", key, "-subj", f"/CN={subject}", "-config", cnf, "-out", csr)
        openssl(
            "x509", "-req", "-in", csr, "-CA", issuer, "-CAkey", issuer_key, "-set_serial", serial,
            "-days", "30", "-extfile", cnf, "-extensions", ext, "-out", cert,
        )  # fmt: skip
    return OpensslChain(directory, root, inter, leaf, leaf_key)


def document_content(*, nonce: str = NONCE, now: dt.datetime | None = None, **extra: object) -> bytes:
    """Signed JSON in the IMDS layout, valid from a minute ago for six hours."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    body = {
        "nonce": nonce,
        "plan": {"name": "", "product": "", "publisher": ""},
        "timeStamp": {
            "createdOn": format_imds_timestamp(moment - dt.timedelta(minutes=1)),
            "expiresOn": format_imds_timestamp(moment + dt.timedelta(hours=6)),
        },
        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
        **extra,
    }
    return json.dumps(body).encode()
