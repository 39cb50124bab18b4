"""`hcibenefit attest verify FILE`: verify a saved IMDS attested document offline;
`attest fetch-intermediates`: complete its chain from the issuers' publishers."""

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
    from hcibenefit.operations.intermediates import FetchResult
    from hcibenefit.report import Report

app = typer.Typer(
    rich_markup_mode=None,
    help="Attested documents: verify one offline, fetch the intermediates its chain lacks.",
    no_args_is_help=True,
)


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


FETCH_EXAMPLES = """Examples:

  hcibenefit attest fetch-intermediates doc.json --what-if    # which issuer is missing, which URL it would ask

  hcibenefit attest fetch-intermediates doc.json              # fetch, verify, store; attest verify then uses them

  hcibenefit attest fetch-intermediates doc.json -o json      # what was stored: file, subject, SHA-256, notAfter

  hcibenefit attest fetch-intermediates doc.json --into /srv/pki   # files for attestation.ca_files, the guests
"""


@app.command("fetch-intermediates", epilog=FETCH_EXAMPLES)
@global_options
def fetch_intermediates(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[DOC]...",
            help="Attested documents (as attest verify reads them, '-' = stdin) whose signer's chain to complete.",
        ),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Start at this issuer URL instead (the one a missing-intermediate reason names; repeatable).",
        ),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            metavar="DIR",
            help="Store here instead of the per-user store that verification loads by itself.",
        ),
    ] = None,
    ca: Annotated[
        list[Path] | None,
        typer.Option("--ca", metavar="FILE", help="Extra CA file, as for attest verify (repeatable)."),
    ] = None,
    what_if: Annotated[
        bool,
        typer.Option(
            "--what-if", help="Show which issuer is missing and the URL it would fetch; fetch nothing."
        ),
    ] = False,
) -> int:
    """Fetch the intermediate CAs a document's chain lacks from the URLs its certificates name (AIA).

    A fetched certificate is kept only if it signed the certificate before it, is a CA, and the chain then
    ends at a root already in your trust store (system, certifi or CA files): a root is never taken from the
    network, so this cannot make anything trusted that was not. Stored as PEM with source, subject,
    SHA-256 and expiry in the per-user store that attest verify, guest check and sweep load by themselves.
    """
    import datetime as dt

    from hcibenefit.attestation import TrustStore, intermediates
    from hcibenefit.attestation.aia import http_getter
    from hcibenefit.operations.intermediates import Start, document_start
    from hcibenefit.operations.intermediates import fetch_intermediates as run_fetch

    app_ = app_context(ctx)
    fmt = app_.choose_format()
    if not files and not url:
        raise UsageError(
            "name at least one attested document or --url",
            hint="hcibenefit attest fetch-intermediates doc.json (the document attest verify reports on)",
        )
    ca_files, _pattern = _settings(app_, ca or [], None)
    # Every input is read and parsed before anything is fetched: a bad file changes nothing (exit 2).
    starts = [document_start(f, _read(f)) for f in files or []]
    starts += [Start(u, url=u) for u in url or []]
    trust = TrustStore.default(ca_files)
    directory = into or intermediates.default_dir()
    if not what_if and fmt == "table":
        print(f"fetching issuers for {len(starts)} chain(s)...", file=sys.stderr)
    result = run_fetch(
        starts,
        trust,
        http_getter(),
        directory=directory,
        what_if=what_if,
        now=dt.datetime.now(dt.timezone.utc),
    )
    app_.emit(fetch_report(result, default_store=into is None), fmt)
    return int(ExitCode.INCOMPLETE if result.incomplete else ExitCode.OK)


_OUTCOME_WORDS = {
    "anchor": "trusted root",
    "known": "already known",
    "fetched": "fetched",
    "would-fetch": "would fetch",
    "failed": "FAILED",
}


def fetch_report(result: FetchResult, *, default_store: bool) -> Report:
    from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns

    stored = {id(s.cert): s for o in result.outcomes for s in o.stored}
    rows = []
    failures = []
    for o in result.outcomes:
        for step in o.walk.steps:
            cert = step.cert
            word = _OUTCOME_WORDS[step.outcome]
            if cert is not None and id(cert) in stored:
                word = "already stored" if stored[id(cert)].existed else "stored"
            rows.append(
                {
                    "source": o.start.source,
                    "certificate": step.subject,
                    "issuer": step.issuer,
                    "result": word,
                    "from": step.url or ("" if step.outcome != "failed" else step.detail),
                }
            )
        if o.walk.error:
            failures.append(DetailItem(f"{o.start.source}: chain not completed", [o.walk.error]))
    notes: list[str] = []
    if result.what_if:
        notes.append("--what-if: nothing was fetched or stored")
    else:
        fresh = [s for s in stored.values() if not s.existed]
        notes.append(
            f"{len(fresh)} certificate(s) stored in {result.directory} (PEM, 0600)"
            if fresh
            else f"nothing new stored in {result.directory}"
        )
        if not default_store:
            notes.append(
                f"{result.directory} is not loaded automatically: list its files in attestation.ca_files or pass --ca"
            )
        for o in result.outcomes:
            if o.chain_after is not None:
                verdict = "chain complete" if o.chain_after.failure is None else o.chain_after.failure
                notes.append(f"{o.start.source}: {verdict}: {o.chain_after.reason}")
    return Report(
        data=result.to_dict(),
        tables=[
            Table(
                "Issuer chain",
                columns(
                    ("source", "DOCUMENT"),
                    ("certificate", "CERTIFICATE"),
                    Column("issuer", "ISSUED BY", wrap=True),
                    ("result", "RESULT"),
                    Column("from", "FROM", wrap=True),
                ),
                rows,
            )
        ],
        notes=notes,
        details=[Details("Not completed", failures)] if failures else (),
    )
