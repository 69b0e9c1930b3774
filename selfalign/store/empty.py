"""A run whose input gave no usable prompt fails: the next step must not train on nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from selfalign.atomic import write_json
from selfalign.errors import UserError
from selfalign.reject_tally import RejectTally
from selfalign.store.assemble import describe_final_files, write_rejects
from selfalign.store.layout import MANIFEST, REJECTS


def empty_run(out: Path, ledger: dict[int, dict], manifest: dict, inputs: list[str]) -> UserError:
    """Write rejects.parquet and a manifest with status "empty"; return the error to raise."""
    write_rejects(out, ledger)
    tally = RejectTally()
    # Rows name an absolute input by its file name only (rows.portable_source); the message
    # names it as the user gave it, so the place can be opened.
    given = {Path(path).name: path for path in inputs if path != "-"}
    for batch in pq.ParquetFile(out / REJECTS).iter_batches(columns=["reason", "source", "line"]):
        for row in batch.to_pylist():
            tally.add(row["reason"], given.get(row["source"], row["source"]), row["line"])
    manifest.update(status="empty", finished=time.time(),
                    counts={"prompts": 0, "rejects": dict(tally.counts)},
                    files=describe_final_files(out))
    write_json(out / MANIFEST, manifest)
    return UserError(tally.message(f"no usable prompt in --prompts {' '.join(inputs)}",
                                   str(out / REJECTS))
                     + "\nNothing was generated and no model was loaded for it.")
