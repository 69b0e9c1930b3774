"""The run folder: the product's contract with training teams, and everything that keeps it whole.

It knows the folder's layout and its bookkeeping, never what the rows mean: generation hands it
rows and tables, a dataset card and figures to write; training, evaluation, `verify` and the
labelling app read finished runs through `reader`. It imports nothing above the shared basics.

- `layout`: where every file of a run lives (final folders, `.selfalign/`, shard names).
- `checksums`: size and sha256 of written files, and how a file no longer matches.
- `ledger`: the fingerprint, the output folder's checks, the ledger of finished shards, resume.
- `lock`: one run at a time per folder.
- `shard_files`: one shard's tables written atomically, with their checksums.
- `assemble`: shard files → the final per-split files, rejects.parquet, the file records.
- `empty`: the outcome of a run whose input held no usable prompt.
- `verify`: is a folder still what its run wrote (`selfalign verify`)?
- `reader`: the one reader of a finished run's files and rows.
"""
