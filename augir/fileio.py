"""Writing outputs so that an interrupted or failed stage never leaves a half-written file or folder.

An output folder is written into a hidden staging folder beside it (`.X.tmp-*`) and swapped in with two renames:
the old copy goes aside (`.X.old-*`), the new one takes its place. A run killed between the two renames leaves no
`X` at all; the next writer of `X` (or `recover_swap`) puts the old copy back and removes the leftovers of earlier
runs, so `X` is always either the old or the new complete output.

A writer replaces only what an earlier augir run wrote: a folder is recognised by the file every output of that
writer holds (its signature, e.g. `index.faiss`), so a mistyped `--out` never deletes a user's folder.
"""

from __future__ import annotations

import errno
import glob
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from augir.errors import AugirError

log = logging.getLogger(__name__)

# Errors of the disk rather than of augir: reported as one line naming the path.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _leftovers(target: Path, kind: str) -> list[Path]:
    """Hidden `.X.tmp-*` or `.X.old-*` entries beside `target`, oldest rename first."""
    pattern = f".{glob.escape(target.name)}.{kind}-*"
    return sorted(target.parent.glob(pattern), key=lambda path: path.lstat().st_ctime)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover_swap(target: Path) -> None:
    """Undo an interrupted swap of `target` and remove the staging and old copies earlier runs left behind.

    If `target` is missing and an old copy was set aside, the old copy is put back (the new one may be incomplete,
    so it is not trusted). Leftovers are removed only once `target` is complete again.
    """
    if not target.parent.is_dir():
        return
    olds = _leftovers(target, "old")
    if olds and not target.exists() and not target.is_symlink():
        restored = olds.pop()  # the last one set aside is the newest complete output
        os.rename(restored, target)
        log.warning("%s: restored the previous output after an interrupted run", target)
    for leftover in [*olds, *_leftovers(target, "tmp")]:
        _remove(leftover)


def check_replaceable(target: Path, signature: str, *, overwrite: bool = False, option: str = "--out") -> None:
    """Refuse to replace `target` unless it is missing, empty, an earlier output (holds `signature`), or `overwrite`.

    `option` names what the user set, for the error message.
    """
    recover_swap(target)
    if overwrite or (not target.exists() and not target.is_symlink()):
        return
    if target.is_symlink() or not target.is_dir():
        raise AugirError(f"{option} {target}: exists and is not a folder; refusing to replace it (--overwrite replaces it)")
    if any(target.iterdir()) and not (target / signature).exists():
        raise AugirError(
            f"{option} {target}: exists and is not an earlier augir output (no {signature}); "
            "refusing to replace it (--overwrite replaces it)"
        )


@contextmanager
def atomic_folder(target: Path, *, signature: str | None = None, overwrite: bool = False,
                  option: str = "--out") -> Iterator[Path]:
    """Yield an empty folder beside `target`; once the block succeeds it replaces `target` whole.

    With a `signature`, an existing `target` that is not an earlier output is refused (see `check_replaceable`).
    On any failure the staging folder is removed and an existing `target` is left as it was. A failure of the disk
    (full, read-only) becomes one line naming `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if signature is None:
        recover_swap(target)
    else:
        check_replaceable(target, signature, overwrite=overwrite, option=option)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700; the output should look like any folder
    try:
        try:
            yield staging
        except OSError as error:
            if error.errno in DISK_ERRORS:
                raise AugirError(f"{target}: cannot write ({os.strerror(error.errno)}); nothing was replaced") from error
            raise
        _swap(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(staging: Path, target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()  # only the unique name was wanted; rename needs the path to be free
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (a `.name.tmp-*` file renamed over it); honours the umask."""
    path = Path(path)
    if path.is_dir():
        raise AugirError(f"{path}: is a folder; give the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in _leftovers(path, "tmp"):
        _remove(leftover)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staging, path)
    except OSError as error:
        if error.errno in DISK_ERRORS:
            raise AugirError(f"{path}: cannot write ({os.strerror(error.errno)}); nothing was replaced") from error
        raise
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON record a line. A full disk is one line naming `path` (callers write into staging, never in place)."""
    try:
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as error:
        if error.errno in DISK_ERRORS:
            raise AugirError(f"{path}: cannot write ({os.strerror(error.errno)})") from error
        raise


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
