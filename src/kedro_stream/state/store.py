"""One input partition's state in a local RocksDB (rocksdict): rows by key, and how far into the
changelog the store is known to agree with it.

Chosen by measurement (``bench/state_store.py``, figures in docs/state.md) against SQLite and LMDB
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

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager

from kedro_stream.state.errors import StateError

Entry = tuple[str, int, bytes | None]  # key, as_of, row (None: removed)

_ROW = b"r"  # prefix of row keys
_CHANGELOG_OFFSET = b"m:changelog_offset"
_AS_OF = struct.Struct(">q")
_LIVE, _REMOVED = b"\x01", b"\x00"
# A store per partition: RocksDB's defaults (64 MiB memtables) would multiply by the partitions.
_WRITE_BUFFER_BYTES = 8 << 20
# Yet a budget per store still multiplies: each store had its own 32 MiB block cache and up to
# 2 x 8 MiB of memtables, which hold every version of a row until they flush; with 24 partitions
# the service grew by ~1 KiB a key for as long as keys came (`make soak`). So every store of the
# process shares one block cache, and its memtables are charged to that cache and flushed when
# together they pass their share: RocksDB's memory is capped whatever the partitions.
_CACHE_BYTES = 64 << 20
MEMTABLES_BYTES = 16 << 20  # of _CACHE_BYTES
# A memtable is charged for its arena's blocks, by default an eighth of its write buffer (1 MiB)
# each: two dozen near-empty memtables would pass the share and flush at every write.
_ARENA_BLOCK_BYTES = 64 << 10
# Module-level: the cache must outlive every store using it, and the budget is the process's.
_CACHE = Cache(_CACHE_BYTES)
_MEMTABLES = WriteBufferManager.new_write_buffer_manager_with_cache(
    MEMTABLES_BYTES, allow_stall=False, cache=_CACHE
)


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    options.set_write_buffer_manager(_MEMTABLES)
    options.set_arena_block_size(_ARENA_BLOCK_BYTES)
    table = BlockBasedOptions()
    table.set_block_cache(_CACHE)
    options.set_block_based_table_factory(table)
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

    def newest_as_of(self) -> int:
        """The highest input offset any entry accounts for, removals included (-1: none): a
        store holding an entry beyond the group's committed offset is from before the offsets
        were moved back. Reads the whole store."""
        newest = -1
        for raw, packed in self._db.items(from_key=_ROW):
            if not raw.startswith(_ROW):
                break
            (as_of,) = _AS_OF.unpack_from(packed)
            newest = max(newest, as_of)
        return newest

    def count(self) -> int:
        """Keys with a row (tombstones not counted); reads the whole store."""
        return sum(1 for _ in self.items())

    def close(self) -> None:
        """Close the database (releases its lock: another process may open it)."""
        self._db.close()
