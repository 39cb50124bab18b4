"""Python's garbage collector, set for one command's run: young collections as usual, no full ones.

A command is a short-lived process whose heap only grows until it exits: every node's facts, then the
findings and the report, are kept to the end. Reference counting frees nearly everything else as soon as
it is let go (a node's session, requests, answers and parse trees); the collector only has to find
reference cycles, and a fleet run makes almost none (the sessions' own were removed: see
`remoting/methods.py`).

At CPython's default thresholds (700, 10, 10) the collector still ran a full collection every time the
heap had grown by a quarter, each scanning every object the run holds. A 400-node status (10,000 VMs)
spent 0.6 s of its 5.5 s of CPU there, five or six full collections of which found almost nothing to
free (measured with `gc.callbacks`); at these thresholds it spends about 0.2 s, in 15 young
collections and one of the middle generation, with the same peak memory.

- **Young collections still run**, every `YOUNG` new objects instead of every 700: a cycle that
  becomes garbage while young (an error's traceback, a cycle a library makes) is still freed then.
- **Full collections wait until the command ends**, and then the process exits without one
  (`cli/app.py` freezes what is left). A cycle that outlives two young collections before it becomes
  garbage waits for the exit: a run makes few, and none per node.
- `hcibenefit lab serve` serves until stopped and sets its own thresholds (`lab/fleet.py`).

On Python 3.14 and later the collector is incremental and ignores the third threshold; there this
only makes young collections less frequent.
"""

from __future__ import annotations

import gc

YOUNG = 20_000
"""New objects between young collections (CPython's default: 700)."""
MIDDLE = 10
"""Young collections between collections of the middle generation (CPython's default)."""
NO_FULL_COLLECTION = 1 << 30
"""As the third threshold: so many middle collections that a full collection never comes first."""


def for_one_command() -> None:
    """Set the collector for a command's run (see the module). Called once, before the command starts."""
    gc.set_threshold(YOUNG, MIDDLE, NO_FULL_COLLECTION)
