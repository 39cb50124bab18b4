"""Which clusters, nodes and VMs a command works on: one selection model for every command.

Every command that works on the fleet builds one `Selection` from the same options (`cli/common.py`
defines them once) and asks it the same questions, so `--vm 'avd-*'` means the same thing in `status`,
`enable`, `guest check` and every command added later:

    --vm NAME|GLOB       VM names or globs (``*``, ``?``, ``[abc]``), case-insensitive as Hyper-V compares
                         names. A name that is exactly some VM's name selects that VM only, even when it
                         holds glob characters (a VM may be called ``avd-[ab]``).
    --cluster NAME|GLOB  clusters, likewise.
    --site NAME          clusters whose inventory ``site`` is NAME.
    --tag TAG            clusters carrying the inventory tag TAG.
    --node NAME|GLOB     nodes (host commands).
    --all                every VM (or node) of the selected clusters; commands that change things demand
                         it (or ``--vm``) so that nobody changes a fleet by forgetting an option.
    --verdict WORD       only the VMs this command's own assessment gives one of these verdicts.

The rule for combining them: the values of one option add up (``--tag a --tag b`` is a OR b), different
options narrow each other (``--site x --tag a`` is x AND a). A name or glob that matches nothing is a usage
error (exit 2) naming the closest names; a verdict that matches nothing is an empty, healthy answer.

The API, all pure (no I/O):

    sel = Selection(vms=("avd-*",), clusters=("hci-lab-01",))
    clusters = sel.select_clusters(inventory)            # UsageError for names that match nothing
    nodes = sel.select_nodes(clusters)                   # the --node names among those clusters
    match = sel.match_vms(vm_facts, name_of=lambda v: v.name, exclusion=inventory.policy.exclusion)
    match.selected, match.expansions, match.unmatched, match.excluded, match.ambiguous
    match.raise_unmatched(known_names, nothing_done="nothing was changed")
    sel.keeps(verdict)                                    # the --verdict filter
    sel.explicit(name)                                    # named exactly (not via a glob or --all)?

Policy exclusions (``policy.exclude_globs``) are applied here too: an excluded VM is never picked up by
a glob or ``--all``; naming it exactly selects it, so that the command can say why it will not act on it.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from hcibenefit.errors import UsageError

if TYPE_CHECKING:
    from hcibenefit.inventory import Cluster, Inventory, Node

T = TypeVar("T")
GLOB_CHARACTERS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return any(ch in GLOB_CHARACTERS for ch in pattern)


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.casefold(), pattern.casefold())


def closest(typed: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to what was typed (case-insensitive), best first."""
    by_folded: dict[str, str] = {}
    for name in known:
        by_folded.setdefault(name.casefold(), name)
    stem = typed.casefold().replace("*", "").replace("?", "")
    found = difflib.get_close_matches(stem, list(by_folded), n=n, cutoff=0.5)
    return [by_folded[f] for f in found]


def _quote(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def no_match_error(
    kind: str, unmatched: Sequence[str], known: Iterable[str], *, where: str, nothing_done: str
) -> UsageError:
    """Exit-2 error for names or globs that matched nothing, with the closest names as the hint."""
    known = list(known)
    hints = []
    for typed in unmatched:
        near = closest(typed, known)
        if near:
            hints.append(f"{typed}: did you mean {', '.join(near)}?")
    listing = f"run `hcibenefit status` to list the {kind}s" if kind == "VM" else ""
    if not hints and kind != "VM" and known:
        listing = f"known {kind}s: {', '.join(known[:20])}" + (" ..." if len(known) > 20 else "")
    return UsageError(
        f"no {kind} matches {_quote(unmatched)} {where}; {nothing_done}",
        hint="; ".join(hints) or listing or None,
    )


@dataclass(frozen=True)
class VMMatch(Generic[T]):
    """What a selection picked out of a list of VMs (or anything with a name)."""

    selected: list[T] = field(default_factory=list)
    """In the order the names were given; a glob's matches in the order of the candidates."""
    expansions: list[tuple[str, list[str]]] = field(default_factory=list)
    """(glob, the names it matched), for every glob given: what a mutating command shows before asking."""
    unmatched: list[str] = field(default_factory=list)
    """Names and globs that matched nothing."""
    excluded: list[tuple[T, str]] = field(default_factory=list)
    """Candidates a glob or --all would have taken, left out by policy.exclude_globs (with the rule)."""
    ambiguous: list[str] = field(default_factory=list)
    """Exact names that match more than one candidate (a VM of that name on several nodes)."""

    def raise_unmatched(self, known: Iterable[str], *, where: str, nothing_done: str) -> None:
        if self.unmatched:
            raise no_match_error("VM", self.unmatched, known, where=where, nothing_done=nothing_done)


@dataclass(frozen=True)
class Selection:
    """The user's answer to "which?": see the module docstring for the options and their rules."""

    vms: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    all: bool = False
    verdicts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Verdict words are compared lower-case, like every other enum-valued option.
        object.__setattr__(self, "verdicts", tuple(dict.fromkeys(v.lower() for v in self.verdicts)))

    # --- what was asked ---------------------------------------------------------------------------

    @property
    def narrows_vms(self) -> bool:
        """True when the selection names VMs or filters them by verdict (not merely by cluster)."""
        return bool(self.vms or self.verdicts)

    @property
    def names_targets(self) -> bool:
        """True when the user said which VMs to act on: --vm, --all or --verdict."""
        return bool(self.vms or self.all or self.verdicts)

    def explicit(self, name: str) -> bool:
        """Whether this VM was named exactly with --vm (not reached through a glob or --all)."""
        key = name.casefold()
        return any(p.casefold() == key for p in self.vms)

    def explicit_node(self, name: str) -> bool:
        """Whether this node was named exactly with --node (which forces host commands on it)."""
        key = name.casefold()
        return any(p.casefold() == key for p in self.nodes)

    def keeps(self, verdict: str) -> bool:
        """The --verdict filter: True when no verdict was given or this one was."""
        return not self.verdicts or verdict.lower() in self.verdicts

    def check_verdicts(self, allowed: Sequence[str], *, command: str) -> None:
        unknown = [v for v in self.verdicts if v not in allowed]
        if unknown:
            raise UsageError(
                f"{command} has no verdict {_quote(unknown)}",
                hint=f"choose from: {', '.join(allowed)}",
            )

    def describe(self) -> str:
        """The options that make this selection, for messages (`--cluster c1 --vm 'avd-*'`)."""
        parts: list[str] = []
        for option, values in (
            ("--cluster", self.clusters),
            ("--site", self.sites),
            ("--tag", self.tags),
            ("--node", self.nodes),
            ("--vm", self.vms),
            ("--verdict", self.verdicts),
        ):
            parts += [f"{option} {shell_quote(v)}" for v in values]
        if self.all:
            parts.append("--all")
        return " ".join(parts) or "(everything)"

    def to_dict(self) -> dict[str, object]:
        return {
            "vms": list(self.vms),
            "clusters": list(self.clusters),
            "sites": list(self.sites),
            "tags": list(self.tags),
            "nodes": list(self.nodes),
            "all": self.all,
            "verdicts": list(self.verdicts),
        }

    # --- clusters and nodes -----------------------------------------------------------------------

    def select_clusters(
        self, inventory: Inventory, *, nothing_done: str = "nothing was done"
    ) -> list[Cluster]:
        """The clusters this selection covers, in inventory order; UsageError for names matching nothing."""
        clusters = list(inventory.clusters)
        where = f"in {inventory.source}"
        if self.clusters:
            picked, unmatched = _pick(clusters, self.clusters, name_of=lambda c: c.name)
            if unmatched:
                raise no_match_error(
                    "cluster", unmatched, [c.name for c in clusters], where=where, nothing_done=nothing_done
                )
            clusters = picked
        if self.sites:
            known_sites = sorted({c.site for c in inventory.clusters if c.site})
            missing = [s for s in self.sites if s.casefold() not in {k.casefold() for k in known_sites}]
            if missing:
                raise no_match_error("site", missing, known_sites, where=where, nothing_done=nothing_done)
            wanted = {s.casefold() for s in self.sites}
            clusters = [c for c in clusters if c.site is not None and c.site.casefold() in wanted]
        if self.tags:
            known_tags = sorted({t for c in inventory.clusters for t in c.tags})
            missing = [t for t in self.tags if t.casefold() not in {k.casefold() for k in known_tags}]
            if missing:
                raise no_match_error("tag", missing, known_tags, where=where, nothing_done=nothing_done)
            wanted = {t.casefold() for t in self.tags}
            clusters = [c for c in clusters if any(t.casefold() in wanted for t in c.tags)]
        if self.nodes and not self.clusters and not self.sites and not self.tags:
            # --node alone: the clusters that hold those nodes.
            owners = {n.cluster for n in self.select_nodes(clusters, nothing_done=nothing_done)}
            clusters = [c for c in clusters if c.name in owners]
        if not clusters:
            raise UsageError(
                f"no cluster in {inventory.source} fits {self.describe()}; {nothing_done}",
                hint="the values of one option add up, different options narrow each other",
            )
        return clusters

    def select_nodes(
        self, clusters: Sequence[Cluster], *, nothing_done: str = "nothing was done"
    ) -> list[Node]:
        """The --node names and globs among these clusters' nodes (all of them when none given)."""
        nodes = [n for c in clusters for n in c.nodes]
        if not self.nodes:
            return nodes
        picked, unmatched = _pick(nodes, self.nodes, name_of=lambda n: n.name)
        if unmatched:
            where = "in " + (
                ", ".join(c.name for c in clusters) if len(clusters) < 5 else "the selected clusters"
            )
            raise no_match_error(
                "node", unmatched, [n.name for n in nodes], where=where, nothing_done=nothing_done
            )
        return picked

    # --- VMs --------------------------------------------------------------------------------------

    def match_vms(
        self,
        candidates: Sequence[T],
        *,
        name_of: Callable[[T], str],
        exclusion: Callable[[str], str | None] = lambda name: None,
    ) -> VMMatch[T]:
        """Pick VMs out of `candidates` by --vm (all of them when no --vm); see the module docstring."""
        match: VMMatch[T] = VMMatch()
        chosen: dict[int, T] = {}

        def take(candidate: T) -> None:
            chosen.setdefault(id(candidate), candidate)

        excluded_ids: set[int] = set()

        def eligible(candidate: T) -> bool:
            rule = exclusion(name_of(candidate))
            if rule is not None:
                if id(candidate) not in excluded_ids:
                    excluded_ids.add(id(candidate))
                    match.excluded.append((candidate, rule))
                return False
            return True

        if not self.vms:
            for candidate in candidates:
                if eligible(candidate):
                    take(candidate)
        for pattern in self.vms:
            key = pattern.casefold()
            exact = [c for c in candidates if name_of(c).casefold() == key]
            if exact:
                if len(exact) > 1:
                    match.ambiguous.append(pattern)
                for candidate in exact:
                    take(candidate)
                continue
            if is_glob(pattern):
                hits = [c for c in candidates if _matches(name_of(c), pattern)]
                kept = [c for c in hits if eligible(c)]
                match.expansions.append((pattern, [name_of(c) for c in kept]))
                if hits:
                    for candidate in kept:
                        take(candidate)
                    continue
            match.unmatched.append(pattern)
        # An excluded VM that was also named exactly is selected, not excluded.
        match.excluded[:] = [(c, r) for c, r in match.excluded if id(c) not in chosen]
        match.selected.extend(chosen.values())
        return match


def _pick(
    items: Sequence[T], patterns: Sequence[str], *, name_of: Callable[[T], str]
) -> tuple[list[T], list[str]]:
    """Items matching any pattern (exact name first, else glob), in item order; and the patterns matching none."""
    hit_ids: set[int] = set()
    unmatched = []
    for pattern in patterns:
        key = pattern.casefold()
        exact = [i for i in items if name_of(i).casefold() == key]
        hits = exact or ([i for i in items if _matches(name_of(i), pattern)] if is_glob(pattern) else [])
        if not hits:
            unmatched.append(pattern)
        hit_ids.update(id(i) for i in hits)
    return [i for i in items if id(i) in hit_ids], unmatched


def shell_quote(value: str) -> str:
    """A value as a POSIX shell word, quoted only when it needs to be (for commands shown to people)."""
    import shlex

    return shlex.quote(value)
