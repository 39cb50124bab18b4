"""One wrong password costs one failed logon per run, not one per node: account lockout is a fleet outage.

Every resolved credential (one per user and password source, per run) carries a `LogonGate`. The first
connection that uses a credential logs on alone; the others wait until it has (then they all go ahead in
parallel) or was refused (then none of them tries: they are reported as skipped, naming the node that
refused it). A connection that fails for another reason (unreachable, TLS) lets the next one try, since
it says nothing about the password.

The cost: with N nodes sharing a credential, the first logon is not overlapped with the others, once per
credential per run. Where the wait sits (remoting/session.py): with Basic and CredSSP just before a
node's first request (which carries the password), its session and that request already built; with Negotiate and Kerberos at the host's first 401,
so connecting and that round trip overlap the first node's logon; with NTLM at the AUTHENTICATE message,
so the NEGOTIATE round trip overlaps it too. The gate opens on the first node's first answer that is not
a 401.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

WAIT_STEP_S = 0.2


@dataclass(frozen=True)
class Refusal:
    node: str
    detail: str


class LogonSkipped(Exception):
    """Not tried: the same credential was refused on another node earlier in this run."""

    def __init__(self, node: str, refusal: Refusal, user: str | None) -> None:
        who = f"user {user!r}" if user else "this credential"
        super().__init__(
            f"not tried: {who} was refused by {refusal.node} earlier in this run ({refusal.detail}); "
            "another attempt could lock the account out"
        )
        self.node = node
        self.refusal = refusal


class LogonGate:
    """Serialises the first logon with one credential; remembers a refusal for the rest of the run."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._proven = False
        self._trying: str | None = None
        self._refusal: Refusal | None = None

    def __copy__(self) -> LogonGate:
        return self  # shared by design: a copy of a credential is the same credential in this run

    def __deepcopy__(self, memo: dict[int, object]) -> LogonGate:
        return self

    @property
    def refusal(self) -> Refusal | None:
        return self._refusal

    def claim(self, node: str) -> None:
        """Make `node` the one to try the credential if nobody is trying it yet, without waiting: a node
        calls this when it starts, so the first node to start (the inventory's order) tries first,
        however long each takes to get ready; it still passes `admit` before sending the password."""
        with self._cond:
            if self._refusal is None and not self._proven and self._trying is None:
                self._trying = node

    def would_wait(self, node: str) -> bool:
        """Whether `admit(node)` would wait now: another node is trying the credential."""
        with self._cond:
            return self._refusal is None and not self._proven and self._trying not in (None, node)

    def admit(self, node: str, user: str | None, cancel: threading.Event | None = None) -> None:
        """Return when `node` may log on; raise LogonSkipped when the credential was refused already."""
        with self._cond:
            while True:
                if self._refusal is not None:
                    raise LogonSkipped(node, self._refusal, user)
                if self._proven:
                    return
                if self._trying is None or self._trying == node:
                    self._trying = node
                    return
                if cancel is not None and cancel.is_set():
                    return  # the caller notices the cancellation itself
                self._cond.wait(WAIT_STEP_S)

    def succeeded(self, node: str) -> None:
        with self._cond:
            self._proven = True
            self._release(node)

    def refused(self, node: str, detail: str) -> None:
        with self._cond:
            if self._refusal is None and not self._proven:
                self._refusal = Refusal(node, detail)
            self._release(node)

    def failed_otherwise(self, node: str) -> None:
        """The logon did not get as far as the password (unreachable, TLS): the next one may try."""
        with self._cond:
            self._release(node)

    def _release(self, node: str) -> None:
        if self._trying == node:
            self._trying = None
        self._cond.notify_all()
