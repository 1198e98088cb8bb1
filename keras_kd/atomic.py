"""Replacing a file or directory without ever losing the old one.

Everything keras-kd writes (exports, saved distillers, teacher cache parts
and manifests, run results, bench and tune records) is first written beside
its destination, under a hidden temporary name of its own in the same
directory (unique per write, so it never replaces another file or another
process's temporary; the final rename stays on one filesystem), and only
renamed over the destination once the write succeeded. A failed save leaves
the old file or directory byte-identical and removes the partial one.

`write_atomically(path, write)` is the one implementation; `write_json` and
`write_text` are it for a JSON document and a text.
"""

import json
import os
import shutil
import uuid


def user_path(path):
    """`path` as a string with `~` expanded (Keras would create a '~' folder)."""
    return os.path.expanduser(os.fspath(path))


def refuse_existing(path, overwrite, replaceable=None, what="an earlier export"):
    """Raises FileExistsError when `path` exists and `overwrite` is False,
    and also, with `overwrite=True`, when what is there is not `what`
    (`replaceable(path)` is False): overwrite replaces what keras-kd wrote,
    never the user's own files or folders. A symbolic link is never replaced."""
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(
            f"'{path}' already exists and was left untouched. Pass "
            "overwrite=True to replace it, or choose another path."
        )
    if os.path.islink(path) or (replaceable is not None and not replaceable(path)):
        raise FileExistsError(
            f"'{path}' is {describe(path)}, not {what}: overwrite=True replaces {what} "
            "only, never other files or folders. It was left untouched; choose another "
            "path, or move it away yourself."
        )


def describe(path, shown=5):
    """What is at `path`, in words: 'a symbolic link to X', 'a file of N
    bytes', 'a folder holding a, b/, ...', 'an empty folder'."""
    if os.path.islink(path):
        return f"a symbolic link to '{os.readlink(path)}'"
    if os.path.isdir(path):
        names = sorted(name + ("/" if os.path.isdir(os.path.join(path, name)) else "")
                       for name in os.listdir(path))
        if not names:
            return "an empty folder"
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return f"a folder holding {', '.join(names[:shown])}{more}"
    return f"a file of {os.path.getsize(path):,} bytes"


def _temporary_sibling(path):
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    # Keras picks the format from the extension, so the temporary name keeps it.
    return os.path.join(folder, f".{stem}.partial-{uuid.uuid4().hex[:8]}{ext}")


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def write_atomically(path, write):
    """Calls `write(temporary_path)`, then moves the result onto `path`.

    `write` creates a file or a directory at the path it is given. When it
    raises, the temporary result is removed and `path` is untouched. A file
    replaces a file with one atomic `os.replace`; a directory (a SavedModel)
    is swapped in with two renames, the old one restored if the second fails.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise PermissionError(
            f"Cannot write '{path}': the folder '{parent}' is not writable. "
            "Choose a writable folder or change its permissions."
        )
    temporary = _temporary_sibling(path)
    try:
        write(temporary)
    except BaseException:
        _remove(temporary)
        raise
    if not os.path.lexists(temporary):
        raise RuntimeError(f"Saving to '{path}' wrote nothing; the old file was kept.")
    new_is_dir = os.path.isdir(temporary)
    old_is_dir = os.path.isdir(path) and not os.path.islink(path)
    if not new_is_dir and not old_is_dir:
        os.replace(temporary, path)
        return path
    if not os.path.lexists(path):
        os.rename(temporary, path)
        return path
    backup = _temporary_sibling(path) + ".old"
    os.rename(path, backup)
    try:
        os.rename(temporary, path)
    except BaseException:
        os.rename(backup, path)
        _remove(temporary)
        raise
    _remove(backup)
    return path


def write_json(path, data, **dump_options):
    """Writes `data` as JSON (`json.dump(data, handle, **dump_options)`) to
    `path` with `write_atomically`, flushed to disk before the rename."""
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, **dump_options)
            handle.flush()
            os.fsync(handle.fileno())

    return write_atomically(path, write)


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` with `write_atomically`."""
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    return write_atomically(path, write)
