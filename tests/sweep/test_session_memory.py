"""What a sweep lets go as it goes, without waiting for a full garbage collection: a finished pipeline's
answer once it is parsed, a closed session's pipelines, and a verified guest document's text."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab


@pytest.fixture
def no_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_closed_session_frees_its_pipelines_without_a_collection(
    sweep_lab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_collection: None
) -> None:
    from hcibenefit.inventory import CredentialResolver, load_inventory
    from hcibenefit.operations.gather import connections
    from hcibenefit.remoting.catalog import HOST_FACTS
    from hcibenefit.remoting.transport import open_session

    for name, value in sweep_lab.environment().items():
        monkeypatch.setenv(name, value)
    inventory = load_inventory(sweep_lab.write_inventory(tmp_path / "inventory.yaml"))
    conn = connections([inventory.clusters[0].nodes[0]], CredentialResolver(), azure=inventory.azure)[0]
    session: Any = open_session(conn.endpoint)
    session.open()
    document = session.run(HOST_FACTS, {"IncludeGuestOs": True}, timeout_s=60)
    assert document["vms"]
    pipeline = weakref.ref(session._finished[-1])
    # The open session keeps the pipeline (to close it), not the node's answer (~30 KB per node in flight).
    assert pipeline() is not None
    assert pipeline().output == []  # type: ignore[union-attr]
    session.close()
    del session
    assert pipeline() is None, "the pipeline (and the node's answer) outlived its closed session"
    assert sweep_lab.open_shells() == 0


def test_a_verified_document_keeps_its_verdict_not_its_text() -> None:
    import dataclasses

    from hcibenefit.operations.sweep import collect

    class Report:
        ok = False
        payload = None

    probe: Any = dataclasses.make_dataclass("Probe", [("document_raw", Any)], frozen=True)("x" * 2000)
    verdicts: dict[str, Any] = {}

    def verify(raw: str, **_: Any) -> Report:
        verdicts["raw"] = raw
        return Report()

    inventory: Any = type("I", (), {"attestation": type("A", (), {"san_pattern": None})()})()
    with pytest.MonkeyPatch.context() as patch:
        import hcibenefit.attestation as attestation

        patch.setattr(attestation, "verify_document", verify)
        patch.setattr(collect, "document_check", lambda report: ("checked", report.ok))
        evidence = collect.probe_evidence(probe, inventory, trust=None, at=None, nonce="n")  # type: ignore[arg-type]
    assert verdicts["raw"] == "x" * 2000
    assert evidence.document == ("checked", False)
    assert evidence.answer.document_raw is None
