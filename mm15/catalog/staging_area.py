"""Where shards are staged: a local folder, or an fsspec URL (s3://, gs://, file://) that the machines
staging shards and the process committing them share.

A local folder keeps the local disk's atomic rename: a shard is written under a temporary name and
renamed into place as `<key>/`, complete once there. Object stores cannot rename a folder atomically,
so under a URL each try writes into a folder of its own, `<key>/<attempt>/`, never rewritten, and the
shard is complete once the marker object `<key>/_SUCCESS` exists: written last, in one piece, naming
the attempt (with its stats). A killed try leaves no marker, a failed one also removes its folder, and
two runs staging the same shard each finish their own try.
"""

from __future__ import annotations

import errno
import json
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

from mm15.atomic import atomic_output
from mm15.errors import DiskFullError

MARKER = "_SUCCESS"
STATS = "stats.json"
# The protocol under which a commit's DuckDB connection reads a URL staging area (see `register`): its
# own name, so it never shadows a filesystem DuckDB uses for the catalog (httpfs for s3://).
DUCKDB_PROTOCOL = "mm15-staging"


def staging_area(location: StagingArea | Path | str) -> StagingArea:
    """The staging area at `location`: a folder, or a URL (anything with "://", file:// included)."""
    if isinstance(location, StagingArea):
        return location
    return RemoteArea(str(location)) if "://" in str(location) else LocalArea(Path(location))


class StagingArea(ABC):
    """Staged shards by key: what staging writes and the commit reads."""

    @abstractmethod
    def is_staged(self, key: str) -> bool: ...

    @abstractmethod
    def read_stats(self, key: str) -> dict: ...

    @abstractmethod
    def files(self, keys: list[str], name: str) -> list[str]:
        """The paths of file `name` of each shard, as the commit's DuckDB connection reads them."""

    @abstractmethod
    def file(self, key: str, name: str) -> tuple[str, Any]:
        """File `name` of a staged shard as (path, filesystem) for pyarrow (None: the local disk)."""

    @abstractmethod
    def writing(self, key: str) -> AbstractContextManager[ShardFolder]:
        """A try at staging shard `key`: write into the folder it gives, then `finish` it."""

    @abstractmethod
    def remove(self, key: str) -> None: ...

    @abstractmethod
    def register(self, con) -> None:
        """Let DuckDB connection `con` read the paths `files` returns."""


class ShardFolder:
    """Where one try writes a shard's files: `path(name)` on `filesystem` (None: the local disk)."""

    def __init__(self, folder: str, filesystem: Any, finish):
        self.folder, self.filesystem, self._finish = folder, filesystem, finish

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def finish(self, stats: dict) -> None:
        """Write the stats, then the completion marker: the last thing a try writes."""
        self._finish(stats)


class LocalArea(StagingArea):
    def __init__(self, root: Path):
        self.root = root

    def is_staged(self, key: str) -> bool:
        return (self.root / key / MARKER).exists()

    def read_stats(self, key: str) -> dict:
        return json.loads((self.root / key / STATS).read_text())

    def files(self, keys: list[str], name: str) -> list[str]:
        return [str(self.root / key / f"{name}.parquet") for key in keys]

    def file(self, key: str, name: str) -> tuple[str, Any]:
        return str(self.root / key / name), None

    @contextmanager
    def writing(self, key: str) -> Iterator[ShardFolder]:
        # a half-written folder from an older layout is replaced; the writers are closed before the rename
        with atomic_output(self.root / key) as tmp:
            tmp.mkdir()

            def finish(stats: dict) -> None:
                (tmp / STATS).write_text(json.dumps(stats))
                (tmp / MARKER).touch()

            yield ShardFolder(str(tmp), None, finish)

    def remove(self, key: str) -> None:
        shutil.rmtree(self.root / key, ignore_errors=True)

    def register(self, con) -> None:
        """DuckDB reads the local disk itself."""


class RemoteArea(StagingArea):
    def __init__(self, url: str):
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self._markers: dict[str, dict] = {}  # a marker names a finished try: it is read once

    def _marker_path(self, key: str) -> str:
        return f"{self.root}/{key}/{MARKER}"

    def _marker(self, key: str) -> dict:
        if key not in self._markers:
            self._markers[key] = json.loads(self.fs.cat_file(self._marker_path(key)))
        return self._markers[key]

    def _prefetch(self, keys: list[str]) -> None:
        """Read the markers not read yet in one call (concurrent requests on object stores)."""
        missing = {self._marker_path(k): k for k in keys if k not in self._markers}
        if missing:
            for path, data in self.fs.cat(list(missing), on_error="raise").items():
                self._markers[missing[self.fs._strip_protocol(path)]] = json.loads(data)

    def is_staged(self, key: str) -> bool:
        return key in self._markers or self.fs.exists(self._marker_path(key))

    def read_stats(self, key: str) -> dict:
        return self._marker(key)["stats"]

    def _attempt(self, key: str) -> str:
        return f"{key}/{self._marker(key)['attempt']}"

    def files(self, keys: list[str], name: str) -> list[str]:
        self._prefetch(keys)
        return [f"{DUCKDB_PROTOCOL}://{self._attempt(key)}/{name}.parquet" for key in keys]

    def file(self, key: str, name: str) -> tuple[str, Any]:
        return f"{self.root}/{self._attempt(key)}/{name}", self.fs

    @contextmanager
    def writing(self, key: str) -> Iterator[ShardFolder]:
        attempt = uuid.uuid4().hex[:12]
        folder = f"{self.root}/{key}/{attempt}"

        def finish(stats: dict) -> None:
            self.fs.pipe_file(f"{folder}/{STATS}", json.dumps(stats).encode())
            marker = {"attempt": attempt, "stats": stats}
            self.fs.pipe_file(self._marker_path(key), json.dumps(marker).encode())
            self._markers[key] = marker

        try:
            self.fs.makedirs(folder, exist_ok=True)  # object stores: nothing to do; file://: the folders
            yield ShardFolder(folder, self.fs, finish)
        except BaseException as error:
            with suppress(Exception):
                self.fs.rm(folder, recursive=True)
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                raise DiskFullError(folder) from None
            raise

    def remove(self, key: str) -> None:
        self._markers.pop(key, None)
        with suppress(FileNotFoundError):
            self.fs.rm(f"{self.root}/{key}", recursive=True)

    def register(self, con) -> None:
        with suppress(Exception):  # registered by an earlier commit on this connection
            con.unregister_filesystem(DUCKDB_PROTOCOL)
        con.register_filesystem(_duckdb_filesystem()(path=self.root, fs=self.fs))


@cache
def _duckdb_filesystem() -> type:
    """The staging area's filesystem as DuckDB sees it: paths relative to its root, under its own protocol."""
    from fsspec.implementations.dirfs import DirFileSystem

    class StagingFileSystem(DirFileSystem):
        protocol = DUCKDB_PROTOCOL

    return StagingFileSystem
