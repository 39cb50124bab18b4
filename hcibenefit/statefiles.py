"""Files hcibenefit keeps for the user between runs (sweep history, the VM-name cache): private from birth.

They hold the fleet's names and its findings, which other users of a shared jump host have no business
reading. A directory hcibenefit creates is 0700 and a file it creates is 0600, set when it is created (the
mode of mkdir and open), never loosened afterwards and never chmod'ed after the fact, so there is no moment
another user could open it. A directory or file that already exists keeps the permissions its owner gave it
(a history on a team share is the team's decision). On Windows the modes mean nothing: the profile's ACLs
already keep %LOCALAPPDATA% private. The audit log (operations.audit) and fetched intermediates
(attestation.intermediates) follow the same rule in their own modules.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(directory: Path) -> None:
    """Create ``directory`` if missing: the directory itself 0700 (its missing parents as mkdir -p makes
    them). An existing directory is left as it is."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)


def create_private(path: Path) -> None:
    """Create ``path`` empty, 0600, in a private directory, unless it exists (then nothing changes)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a reader sees the old file or the new one), the new file 0600."""
    private_dir(path.parent)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
