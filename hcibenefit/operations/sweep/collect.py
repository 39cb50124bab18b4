"""Collecting everything a sweep judges: per node, its host facts, then the guest probe for the VMs it owns
that need Azure Benefits; every node of every selected cluster under one bound, each failure kept to its
node or guest, and a deadline after which nothing new starts and what runs is stopped.

All I/O of a sweep happens here (and in offline.py for --from-dir); checks.evaluate judges what comes back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.evaluate import ClusterEvidence, GuestEvidence, guest_not_applicable
from hcibenefit.checks.guest_checks import NotProbed
from hcibenefit.errors import HcibenefitError
from hcibenefit.facts.guest import GuestProbe, parse_probe_body
from hcibenefit.facts.host import FactsError, HostFacts, VMFacts, parse_host_facts
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory, Node
from hcibenefit.operations.gather import (
    HOST_FACTS_TIMEOUT_S,
    Connection,
    connections,
    describe_error,
    warn_once_per_reason,
)
from hcibenefit.operations.guests.check import document_check, trust_for
from hcibenefit.operations.guests.targets import (
    IMDS_TIMEOUT_S,
    PROBE_TIMEOUT_S,
    Answer,
    Batch,
    GuestTarget,
    batch_error,
    new_nonce,
    plan_batches,
    run_batch,
)
from hcibenefit.operations.selection import Selection
from hcibenefit.operations.tlswarn import warn_unvalidated
from hcibenefit.remoting.catalog import GUEST_PROBE, GUEST_PROBE_BODY, HOST_FACTS
from hcibenefit.remoting.errors import (
    MalformedOutputError,
    RemotingError,
    UnreachableError,
)
from hcibenefit.remoting.runner import run_per_host
from hcibenefit.remoting.session import Cancelled
from hcibenefit.remoting.transport import Session, open_session

if TYPE_CHECKING:
    from hcibenefit.attestation import TrustStore

log = logging.getLogger(__name__)


class Progress:
    """Counts for the progress line: nodes and guests done, problems so far. Thread-safe; `on_change` is
    called (from worker threads) after every update."""

    def __init__(self, on_change: Callable[[Progress], None] | None = None) -> None:
        self.nodes_total = 0
        self.nodes_done = 0
        self.nodes_failed = 0
        self.guests_total = 0
        self.guests_done = 0
        self.guests_failed = 0
        self._lock = threading.Lock()
        self._on_change = on_change

    def update(self, **delta: int) -> None:
        with self._lock:
            for key, value in delta.items():
                setattr(self, key, getattr(self, key) + value)
        if self._on_change is not None:
            self._on_change(self)


@dataclass(frozen=True)
class Scope:
    """What a sweep covers: the clusters and nodes to ask, and which of their VMs (operations.selection)."""

    clusters: tuple[Cluster, ...]
    nodes: tuple[Node, ...] = ()
    """The nodes to ask; empty: every node of the clusters."""
    selection: Selection = field(default_factory=Selection)
    exclusion: Callable[[str], str | None] = lambda _name: None
    """policy.exclude_globs: an excluded VM is left out unless named exactly."""
    probe_every_guest: bool = False
    """Ask every selected running guest, also those that need no Azure Benefits (the AVD checklist reads
    its agent and clock); the sweep asks only the guests that need them."""

    def nodes_of(self, cluster: Cluster) -> tuple[Node, ...]:
        if not self.nodes:
            return cluster.nodes
        wanted = {n.name.casefold() for n in self.nodes}
        return tuple(n for n in cluster.nodes if n.name.casefold() in wanted)

    def vms(self, candidates: Sequence[VMFacts]) -> list[VMFacts]:
        """The selected VMs among these (a glob matching none of them is not an error here)."""
        return self.selection.match_vms(
            candidates, name_of=lambda v: v.name, exclusion=self.exclusion
        ).selected


@dataclass
class NodeOutcome:
    facts: HostFacts
    guests: dict[str, GuestEvidence] = field(default_factory=dict)


@dataclass(frozen=True)
class Collected:
    clusters: tuple[ClusterEvidence, ...]
    deadline_reached: bool


class Deadline:
    """Sets the shared cancel event when the deadline passes; remembers that it did."""

    def __init__(self, seconds: float | None, cancel: threading.Event) -> None:
        self.reached = False
        self._cancel = cancel
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.reached = True
        log.warning("deadline reached: stopping what runs, starting nothing new")
        self._cancel.set()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


DEADLINE_TEXT = "not assessed: the run's deadline passed"


def collect(
    inventory: Inventory,
    resolver: CredentialResolver,
    scope: Scope,
    *,
    workers: int,
    deadline_s: float | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
    when_idle: Callable[[], None] | None = None,
) -> Collected:
    """Host facts and guest probes of every node in `scope`, one session per node. `when_idle` runs once,
    the first time the run waits on the network (remoting.runner.run_per_host)."""
    cancel = cancel or threading.Event()
    progress = progress or Progress()
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    deadline = Deadline(deadline_s, cancel)
    try:
        trust = trust_for(inventory)
        nodes = [n for c in scope.clusters for n in scope.nodes_of(c)]
        progress.update(nodes_total=len(nodes))
        # one line for the fleet, before connecting
        warn_unvalidated((n.name, n.winrm) for n in nodes if n.transport != "arc")
        conns, unusable = _connections(nodes, resolver, inventory)
        cluster_of = {c.name: c for c in scope.clusters}

        def work(conn: Connection, ev: threading.Event) -> NodeOutcome:
            node = conn.node
            if ev.is_set():
                raise Cancelled(node.name, DEADLINE_TEXT if deadline.reached else "cancelled")
            # One session per node: host facts, then the guest probe in the same runspace pool.
            for attempt in (1, 2):
                session = open_session(conn.endpoint, cancel=ev)
                opened = False
                try:
                    session.open()
                    opened = True
                    facts = _host_facts(session, conn)
                    progress.update(nodes_done=1)
                    guests = _probe_node_guests(
                        inventory,
                        resolver,
                        cluster_of[node.cluster],
                        conn,
                        facts,
                        scope,
                        trust,
                        ev,
                        progress,
                        clock,
                        session,
                    )
                    return NodeOutcome(facts, guests)
                except UnreachableError:
                    # Host facts are read-only: a connection that dropped after opening is worth one
                    # more session (connecting has its own retries inside open()).
                    if attempt == 2 or not opened:
                        raise
                    log.info("%s: connection dropped; reading host facts once more", node.name)
                finally:
                    session.close()
            raise AssertionError("unreachable")

        outcomes = run_per_host(
            conns, work, name_of=lambda c: c.node.name, workers=workers, cancel=cancel, when_idle=when_idle
        )
    finally:
        deadline.stop()
    errors: dict[str, str] = dict(unusable)
    results: dict[str, NodeOutcome] = {}
    for outcome in outcomes:
        name = outcome.target.node.name
        if outcome.value is not None:
            results[name] = outcome.value
        else:
            assert outcome.error is not None
            errors[name] = _why(outcome.error, deadline.reached)
            progress.update(nodes_done=1, nodes_failed=1)
    warn_once_per_reason(errors)
    evidence = []
    for cluster in scope.clusters:
        mine = scope.nodes_of(cluster)
        hosts = tuple(results[n.name].facts for n in mine if n.name in results)
        guests: dict[str, GuestEvidence] = {}
        for n in mine:
            if n.name in results:
                guests.update(results[n.name].guests)
        unreachable = {n.name: errors[n.name] for n in mine if n.name in errors}
        evidence.append(
            ClusterEvidence(cluster.name, tuple(n.name for n in mine), hosts, unreachable, guests)
        )
    return Collected(tuple(evidence), deadline.reached)


def _host_facts(session: Session, conn: Connection) -> HostFacts:
    document = session.run(HOST_FACTS, {"IncludeGuestOs": True}, timeout_s=HOST_FACTS_TIMEOUT_S)
    try:
        return parse_host_facts(document, node=conn.node.name, cluster=conn.node.cluster)
    except FactsError as exc:
        raise MalformedOutputError(conn.node.name, f"{HOST_FACTS.key}: {exc}") from None


def _why(error: RemotingError, deadline_reached: bool) -> str:
    if isinstance(error, Cancelled) and deadline_reached:
        return DEADLINE_TEXT
    return describe_error(error)


def _connections(
    nodes: Sequence[Node], resolver: CredentialResolver, inventory: Inventory
) -> tuple[list[Connection], dict[str, str]]:
    """One connection per node whose credential resolves; the others with why (never the secret)."""
    conns, unusable = [], {}
    for node in nodes:
        try:
            conns += connections([node], resolver, azure=inventory.azure)
        except HcibenefitError as exc:
            unusable[node.name] = f"credential: {exc.message}"
    return conns, unusable


def _wanted_guests(facts: HostFacts, inventory: Inventory, scope: Scope) -> list[VMFacts]:
    if scope.probe_every_guest:
        return [vm for vm in scope.vms(facts.vms) if vm.running]
    return [
        vm
        for vm in scope.vms(facts.vms)
        if guest_not_applicable(vm, requirement(vm, facts, inventory.policy)) is None
    ]


def _probe_node_guests(
    inventory: Inventory,
    resolver: CredentialResolver,
    cluster: Cluster,
    conn: Connection,
    facts: HostFacts,
    scope: Scope,
    trust: TrustStore,
    cancel: threading.Event,
    progress: Progress,
    clock: Callable[[], dt.datetime],
    session: Session,
) -> dict[str, GuestEvidence]:
    vms = _wanted_guests(facts, inventory, scope)
    if not vms:
        return {}
    progress.update(guests_total=len(vms))
    targets = [
        GuestTarget(
            vm.name,
            cluster,
            conn.node,
            vm,
            facts,
            requirement(vm, facts, inventory.policy),
            cluster.guests.vm(vm.name),
        )
        for vm in vms
    ]
    answers: dict[str, Answer] = {}
    nonces: dict[str, str] = {}
    try:
        batches = plan_batches(targets, resolver, azure=inventory.azure)
    except HcibenefitError as exc:
        failed = NotProbed("credential-unavailable", exc.message)
        answers = {t.name.casefold(): failed for t in targets}
        batches = []
    for batch in batches:
        nonce = new_nonce()
        answers.update(_run_probe_batch(batch, nonce, cancel, session if batch.direct else None))
        nonces.update(dict.fromkeys((t.name.casefold() for t in batch.targets), nonce))
    at = clock()
    evidence = {}
    failed_count = 0
    for target in targets:
        key = target.name.casefold()
        answer = answers.get(key) or NotProbed("no-answer", "the probe returned nothing for this VM")
        evidence[key] = _evidence(answer, inventory, trust, at, nonces.get(key))
        failed_count += not isinstance(answer, GuestProbe)
    progress.update(guests_done=len(targets), guests_failed=failed_count)
    return evidence


def _run_probe_batch(
    batch: Batch, nonce: str, cancel: threading.Event, session: Session | None
) -> Mapping[str, Answer]:
    if cancel.is_set():
        return {t.name.casefold(): NotProbed("deadline", DEADLINE_TEXT) for t in batch.targets}
    try:
        return run_batch(
            batch,
            cancel,
            host_script=GUEST_PROBE,
            body_script=GUEST_PROBE_BODY,
            parameters={"Nonce": nonce, "TimeoutSec": IMDS_TIMEOUT_S},
            body_text_parameter="ProbeScript",
            parse=parse_probe_body,
            timeout_s=PROBE_TIMEOUT_S,
            session=session,
        )
    except Cancelled:
        return {t.name.casefold(): NotProbed("deadline", DEADLINE_TEXT) for t in batch.targets}
    except RemotingError as exc:
        log.warning("%s: guest probe: %s", batch.name, exc.detail)
        failed = batch_error(batch, exc)
        return {t.name.casefold(): failed for t in batch.targets}


def _evidence(
    answer: Answer, inventory: Inventory, trust: TrustStore, at: dt.datetime, nonce: str | None
) -> GuestEvidence:
    if not isinstance(answer, GuestProbe):
        if isinstance(answer, NotProbed | tuple):
            return GuestEvidence(answer)
        return GuestEvidence(NotProbed("probe-failed", f"unexpected answer {type(answer).__name__}"))
    return probe_evidence(answer, inventory, trust, at, nonce or "")


def probe_evidence(
    probe: GuestProbe, inventory: Inventory, trust: TrustStore, at: dt.datetime, nonce: str
) -> GuestEvidence:
    """A probe's answer with its document verified against `nonce`: the one sent with the probe (a guest
    that echoes another nonce fails the nonce check)."""
    if probe.document_raw is None:
        return GuestEvidence(probe)
    from hcibenefit.attestation import verify_document
    from hcibenefit.attestation.content import ContentError, timestamps

    report = verify_document(
        probe.document_raw,
        nonce=nonce or None,
        at=at,
        trust=trust,
        san_pattern=inventory.attestation.san_pattern,
    )
    expires = None
    if report.ok and report.payload is not None:
        try:
            expires = timestamps(report.payload).expires_on
        except ContentError:
            expires = None
    # The verdict on the document is kept; its text (~1.3 KB a guest, 8 MB at 10,000 VMs) is read by
    # nothing once verified: the checks read `document` then, never the raw text.
    return GuestEvidence(dataclasses.replace(probe, document_raw=None), document_check(report), expires)
