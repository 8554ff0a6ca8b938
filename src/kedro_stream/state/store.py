"""One input partition's state in a local RocksDB (rocksdict): rows by key, and how far into the
changelog the store is known to agree with it.

Chosen by measurement (``bench/state_store.py``, figures in the README) against SQLite and LMDB
for what a batch asks, one multi-get and one atomic write of ~1 000 keys: RocksDB costs a fifth
of SQLite; LMDB is as fast only without syncing, where its documentation warns that a machine
crash may corrupt the file. RocksDB's write-ahead log (checksummed, not synced per write) loses
nothing to a killed process and at most the last writes to a machine crash, which the changelog
restores; Quix Streams keeps its state the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from kedro_stream.state.errors import StateError

Entry = tuple[str, int, bytes | None]  # key, as_of, row (None: removed)

_ROW = b"r"  # prefix of row keys
_CHANGELOG_OFFSET = b"m:changelog_offset"
_AS_OF = struct.Struct(">q")
_LIVE, _REMOVED = b"\x01", b"\x00"
# A store per partition: RocksDB's defaults (64 MiB memtables) would multiply by the partitions.
_WRITE_BUFFER_BYTES = 8 << 20


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    return options


def _pack(as_of: int, value: bytes | None) -> bytes:
    return _AS_OF.pack(as_of) + (_REMOVED if value is None else _LIVE + value)


def _unpack(packed: bytes) -> tuple[int, bytes | None]:
    (as_of,) = _AS_OF.unpack_from(packed)
    live = packed[_AS_OF.size : _AS_OF.size + 1] == _LIVE
    return as_of, packed[_AS_OF.size + 1 :] if live else None


class PartitionStore:
    """Rows by key; a removed key keeps a tombstone with its ``as_of``, so that an older row met
    later in the changelog cannot bring it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Rdict(str(path), _options())
        except Exception as exc:  # rocksdict raises plain exceptions for I/O and lock errors
            raise StateError(f"cannot open the state store {path}: {exc}") from None

    @property
    def changelog_offset(self) -> int | None:
        """The changelog offset to read from to catch up; ``None``: from its start."""
        found = self._db.get(_CHANGELOG_OFFSET)
        return None if found is None else int(found)

    def get(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes | None]]:
        """``as_of`` and row of each known key (tombstones included): one multi-get."""
        if not keys:
            return {}
        found = self._db[[_ROW + key.encode() for key in keys]]
        return {key: _unpack(packed) for key, packed in zip(keys, found, strict=True) if packed}

    def rows(self, keys: Sequence[str]) -> list[bytes]:
        """The rows of the keys that have one."""
        return [value for _, value in self.get(keys).values() if value is not None]

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every key with a row, and the row: a whole partition's state."""
        for raw, packed in self._db.items(from_key=_ROW):
            if not raw.startswith(_ROW):
                break
            _, value = _unpack(packed)
            if value is not None:
                yield raw[len(_ROW) :].decode(), value

    def apply(self, entries: Iterable[Entry], changelog_offset: int | None = None) -> None:
        """Write ``entries`` and move the changelog offset, atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, as_of, value in entries:
            batch.put(_ROW + key.encode(), _pack(as_of, value))
        if changelog_offset is not None:
            batch.put(_CHANGELOG_OFFSET, str(changelog_offset).encode())
        try:
            self._db.write(batch)
        except Exception as exc:  # a full disk, a store closed under us
            raise StateError(f"cannot write the state store {self.path}: {exc}") from None

    def count(self) -> int:
        """Keys with a row (tombstones not counted); reads the whole store."""
        return sum(1 for _ in self.items())

    def close(self) -> None:
        self._db.close()
