"""Per-key state: a namespace's state datasets, kept per input partition, restored from a changelog.

A stateful namespace reads a state input (the current rows of the batch's keys) and writes a
state-updates output (the rows that replace them). The service keeps the rows of each input
partition in a local store and mirrors every change to a changelog topic, partition for
partition, so another instance can rebuild the store after a crash or a rebalance.

Every changelog record is a whole row (or a tombstone) tagged with ``as_of``: the input offset up
to which it accounts for the key (the offset its batch commits). A row is therefore a snapshot
of the key at a position of the input, and restoring picks, per key, the snapshot with the
highest position not beyond the committed offset. That rule needs no transaction: a row whose
batch never committed (a crash between publish and commit) is beyond the committed offset and
skipped, and a row written again by the batch's second run carries the same content or a later
position. No update is ever applied twice, because rows are never deltas.

Modules: :mod:`.rows` (rows ↔ datasets, checks of the updates), :mod:`.store` (one partition's
local store), :mod:`.layout` (where the stores live), :mod:`.changelog` (the record format),
:mod:`.topics` (the changelog topics), :mod:`.restore` (catching a store up), :mod:`.keeper` (a
stream's stores across assignments, what a batch reads and writes, and :class:`~.keeper.NoState`
for a stateless stream). The Kedro dataset that stands in for the stores under ``kedro run`` is
:class:`kedro_stream.datasets.StateDataset`.
"""
