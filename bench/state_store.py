"""Which embedded store holds a partition's state: sqlite3, LMDB or RocksDB, side by side.

What the stream asks of it, per batch: one multi-get of the batch's keys (about 70 % of them
known), then one atomic write of their new rows with the changelog checkpoint. On restore: long
runs of writes. Each store is measured round-robin in the same process, on the same keys and
rows. The durability the stream needs: a killed process loses nothing committed, and a machine
crash may lose the last writes (the changelog restores them) but must never leave a corrupt
file; LMDB meets the second only with sync, so it is measured both ways.

Usage: python bench/state_store.py [--keys 100000] [--batch 1000] [--batches 200] [--json]
lmdb and rocksdict are in the ``bench`` extra; a store whose library is missing is skipped.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

ROW = b'{"events":[[1700000000000,12.5],[1700000360000,80.0],[1700003600000,7.25]],"n":3}'


class Store(Protocol):
    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes]: ...
    def write(self, rows: list[tuple[bytes, bytes]], checkpoint: int) -> None: ...
    def close(self) -> None: ...


class Sqlite:
    name = "sqlite3"

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path / "state.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # consistent after a crash of any kind
        self._db.execute("CREATE TABLE rows (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID")
        self._db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER)")

    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes]:
        marks = ",".join("?" * len(keys))
        return dict(self._db.execute(f"SELECT key, value FROM rows WHERE key IN ({marks})", keys))

    def write(self, rows: list[tuple[bytes, bytes]], checkpoint: int) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)", rows)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (checkpoint,))
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class Lmdb:
    """Without sync, a killed process loses nothing (the OS has the pages), but LMDB's own
    documentation warns that a machine crash may corrupt the file; with sync, every write
    waits for the disk."""

    name = "lmdb"

    def __init__(self, path: Path, *, sync: bool = False) -> None:
        import lmdb

        self._env = lmdb.open(str(path), map_size=4 << 30, sync=sync, metasync=sync)

    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes]:
        with self._env.begin() as txn:
            found = ((k, txn.get(k)) for k in keys)
            return {k: v for k, v in found if v is not None}

    def write(self, rows: list[tuple[bytes, bytes]], checkpoint: int) -> None:
        with self._env.begin(write=True) as txn:
            txn.cursor().putmulti(rows)
            txn.put(b"\x00checkpoint", str(checkpoint).encode())

    def close(self) -> None:
        self._env.close()


class LmdbSync(Lmdb):
    name = "lmdb+sync"

    def __init__(self, path: Path) -> None:
        super().__init__(path, sync=True)


class Rocks:
    name = "rocksdict"

    def __init__(self, path: Path) -> None:
        from rocksdict import Options, Rdict

        self._db = Rdict(str(path), Options(raw_mode=True))

    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes]:
        values = self._db[keys]  # one multi_get
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def write(self, rows: list[tuple[bytes, bytes]], checkpoint: int) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for key, value in rows:
            batch.put(key, value)
        batch.put(b"\x00checkpoint", str(checkpoint).encode())
        self._db.write(batch)  # atomic; its WAL (checksummed, not synced) survives any crash

    def close(self) -> None:
        self._db.close()


def _available() -> list[Callable[[Path], Any]]:
    stores: list[Callable[[Path], Any]] = [Sqlite]
    for module, store in (("lmdb", Lmdb), ("lmdb", LmdbSync), ("rocksdict", Rocks)):
        try:
            __import__(module)
        except ImportError:
            print(f"{module} is not installed: {store.name} skipped (pip install -e '.[bench]')")
            continue
        stores.append(store)
    return stores


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    keys = [f"account-{i:07d}".encode() for i in range(args.keys)]
    rng = random.Random(7)
    batches = []
    for _ in range(args.batches):
        known = rng.sample(keys, int(args.batch * 0.7))
        new = [f"new-{rng.getrandbits(64):x}".encode() for _ in range(args.batch - len(known))]
        batches.append(known + new)
    results: dict[str, dict[str, list[float]]] = {}
    root = Path(tempfile.mkdtemp(prefix="state-store-"))
    try:
        stores = {}
        for factory in _available():
            folder = root / factory.name
            folder.mkdir()
            store = factory(folder)
            started = time.perf_counter()
            for start in range(0, len(keys), 10_000):  # a restore writes long runs
                store.write([(k, ROW) for k in keys[start : start + 10_000]], start)
            restore_s = time.perf_counter() - started
            stores[factory.name] = store
            results[factory.name] = {"get": [], "write": [], "restore": [restore_s]}
        for i, batch in enumerate(batches):  # round-robin: noise hits every store alike
            for name, store in stores.items():
                started = time.perf_counter()
                found = store.get_many(batch)
                got = time.perf_counter()
                store.write([(k, found.get(k, ROW)) for k in batch], i)
                results[name]["get"].append(got - started)
                results[name]["write"].append(time.perf_counter() - got)
        for store in stores.values():
            store.close()
    finally:
        shutil.rmtree(root)
    return {
        name: {
            "get_ms": statistics.median(r["get"]) * 1000,
            "write_ms": statistics.median(r["write"]) * 1000,
            "restore_rows_per_s": args.keys / r["restore"][0],
        }
        for name, r in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args)
    base = figures["sqlite3"]
    print(f"{args.keys} keys, batches of {args.batch} keys (70 % known), median of {args.batches}")
    header = ("store", "get ms", "write ms", "batch vs sqlite3", "restore rows/s")
    print(f"{header[0]:10} {header[1]:>8} {header[2]:>9} {header[3]:>17} {header[4]:>15}")
    for name, f in figures.items():
        ratio = (base["get_ms"] + base["write_ms"]) / (f["get_ms"] + f["write_ms"])
        print(
            f"{name:10} {f['get_ms']:8.2f} {f['write_ms']:9.2f} {ratio:16.2f}x "
            f"{f['restore_rows_per_s']:15.0f}"
        )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
