"""replace_directory: an index folder is swapped whole or not at all."""

from __future__ import annotations

import pytest

from llm.retrieval.storage import replace_directory


def test_it_replaces_the_old_folder_whole(tmp_path):
    """Files of the old version do not linger beside the new one, nor does staging."""
    target = tmp_path / "index"
    replace_directory(target, lambda folder: (folder / "old.txt").write_text("old"))
    replace_directory(target, lambda folder: (folder / "new.txt").write_text("new"))
    assert sorted(path.name for path in target.iterdir()) == ["new.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["index"]


def test_it_leaves_the_old_folder_when_writing_fails(tmp_path):
    """A write that raises changes nothing a reader can see and leaves no staging behind."""
    target = tmp_path / "index"
    replace_directory(target, lambda folder: (folder / "old.txt").write_text("old"))

    def broken(folder):
        (folder / "half.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_directory(target, broken)
    assert (target / "old.txt").read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["index"]
