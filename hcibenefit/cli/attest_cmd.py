"""`hcibenefit attest verify FILE`: verify a saved IMDS attested document offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hcibenefit.cli.common import app_context, global_options
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode

if TYPE_CHECKING:
    import datetime as dt

    from hcibenefit.attestation import VerificationReport
    from hcibenefit.cli.context import AppContext
    from hcibenefit.report import Report

app = typer.Typer(rich_markup_mode=None, help="Attested documents: verify one offline.", no_args_is_help=True)


def _parse_at(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    from hcibenefit.attestation import parse_timestamp

    try:
        # Clamped: before year 1 UTC nothing is valid yet, which the checks then report (exit 1).
        return parse_timestamp(text, clamp=True)
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not a timestamp",
            hint="use ISO 8601 (2025-01-31T12:00:00Z) or the IMDS form (01/31/25 12:00:00 -0000)",
        ) from None


def _read(file: str) -> bytes:
    from hcibenefit.attestation.verify import read_document, read_limited

    if file == "-":
        return read_limited(sys.stdin.buffer)
    return read_document(Path(file))


def _settings(app: AppContext, ca: list[Path], san_pattern: str | None) -> tuple[list[Path], str]:
    """CA files and SAN pattern: the inventory's (when one is given) plus --ca; --san-pattern wins."""
    from hcibenefit.attestation import DEFAULT_SAN_PATTERN

    ca_files: list[Path] = []
    pattern = DEFAULT_SAN_PATTERN
    if app.inventory_path is not None:
        settings = app.inventory().attestation
        ca_files.extend(settings.ca_files)
        pattern = settings.san_pattern
    ca_files.extend(ca)
    return ca_files, san_pattern or pattern


def verify_report(report: VerificationReport, *, source: str, nonce: str | None, san_pattern: str) -> Report:
    from hcibenefit.report import Report, Table, columns

    data: dict[str, Any] = {"file": source, "nonce": nonce, "san_pattern": san_pattern, **report.to_dict()}
    rows = [
        {
            "check": c.id,
            "result": {True: "ok", False: "FAIL", None: "skipped"}[c.ok],
            "reason": c.reason,
        }
        for c in report.checks
    ]
    verdict = "verified" if report.ok else f"NOT verified: {report.failure_kind}"
    notes = [f"{source}: {verdict}"]
    if report.signer_subject:
        notes.append(f"signer: {report.signer_subject} ({', '.join(report.signer_sans) or 'no DNS SAN'})")
    return Report(
        data=data,
        tables=[
            Table(
                "Attested document",
                columns(("check", "CHECK"), ("result", "RESULT"), ("reason", "REASON")),
                rows,
            )
        ],
        notes=notes,
    )


VERIFY_EXAMPLES = """Examples:

  hcibenefit attest verify doc.json --nonce 1234567890        # a document saved from inside a guest

  hcibenefit -i fleet.yaml attest verify doc.json -o json     # with the inventory's CA files and SAN pattern

  hcibenefit attest verify doc.json --at 2026-01-31T12:00:00Z --ca intermediates.pem
"""


@app.command("verify", epilog=VERIFY_EXAMPLES)
@global_options
def verify(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="The document: IMDS JSON, or the bare base64 PKCS#7 ('-' = stdin)."
        ),
    ],
    nonce: Annotated[
        str | None,
        typer.Option(
            "--nonce", metavar="NONCE", help="The nonce the document must carry (the one sent to IMDS)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help="Judge validity at this time instead of now (ISO 8601 or IMDS form)."
        ),
    ] = None,
    ca: Annotated[
        list[Path] | None,
        typer.Option(
            "--ca",
            metavar="FILE",
            help="Extra CA file (PEM bundle or DER) with roots or intermediates (repeatable).",
        ),
    ] = None,
    san_pattern: Annotated[
        str | None,
        typer.Option(
            "--san-pattern",
            metavar="REGEX",
            help="Regular expression the signer's DNS SAN must match in full.",
        ),
    ] = None,
) -> int:
    """Verify signature, chain, signer name, nonce and validity; exit 1 when the document does not hold."""
    from hcibenefit.attestation import TrustStore, verify_document

    app_ = app_context(ctx)
    fmt = app_.choose_format()
    when = _parse_at(at)
    ca_files, pattern = _settings(app_, ca or [], san_pattern)
    # Read everything the user named before verifying: an unreadable file or CA is a usage error (2).
    raw = _read(file)
    trust = TrustStore.default(ca_files)
    report = verify_document(raw, nonce=nonce, at=when, trust=trust, san_pattern=pattern)
    app_.emit(verify_report(report, source=file, nonce=nonce, san_pattern=pattern), fmt)
    return int(ExitCode.OK if report.ok else ExitCode.FINDINGS)
