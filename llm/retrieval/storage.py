"""Writing an index folder so that readers see the old one or the new one, whole."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path


def replace_directory(directory: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on an empty folder beside ``directory``, then put it in its place.

    The new folder is complete before it takes the name, so a reader never
    opens a half-written index. Renames swap a whole folder: the old one moves
    aside first (a reader in that instant finds no folder, not a broken one)
    and is deleted after. A ``write`` that fails leaves ``directory`` as it was.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.new-", dir=directory.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide it from a reader running as another user
    try:
        write(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex}"
    if directory.exists():
        os.rename(directory, retired)
    os.rename(staging, directory)
    shutil.rmtree(retired, ignore_errors=True)
