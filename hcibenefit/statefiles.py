"""Files hcibenefit keeps for the user between runs (sweep history, the caches): private from birth.

They hold the fleet's names and its findings, which other users of a shared jump host have no business
reading. A directory hcibenefit creates is 0700 and a file it creates is 0600, set when it is created (the
mode of mkdir and open), never loosened afterwards and never chmod'ed after the fact, so there is no moment
another user could open it. A directory or file that already exists keeps the permissions its owner gave it
(a history on a team share is the team's decision). On Windows the modes mean nothing: the profile's ACLs
already keep %LOCALAPPDATA% private. The audit log (operations.audit) and fetched intermediates
(attestation.intermediates) follow the same rule in their own modules.
"""

from __future__ import annotations

import contextlib
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


def cache_home() -> Path:
    """Where hcibenefit's caches live: $XDG_CACHE_HOME/hcibenefit, else ~/.cache/hcibenefit."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hcibenefit"


def keep_newest(directory: Path, count: int, *, keep: Path) -> None:
    """Remove the least recently written ``*.json`` files of a cache directory beyond ``count`` (never
    ``keep``, the one just written). Best effort: a file another run removed first is no error."""
    files: list[tuple[float, Path]] = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            files.append((path.stat().st_mtime, path))
    files.sort(key=lambda f: f[0], reverse=True)
    for _, path in files[count:]:
        if path != keep:
            with contextlib.suppress(OSError):
                path.unlink()
