"""Short DPO run of the embedded SmolLM2-135M-Instruct on CPU; prints held-out reward accuracy.

    python benchmarks/dpo_smollm2.py                      # a generated folder from outputs/, else synthetic
    python benchmarks/dpo_smollm2.py --data outputs/run1  # a given generated folder

Without a generated folder holding at least 64 train pairs and a validation split, it writes a
synthetic one (tests/train_fixtures.py: 64 train + 16 validation pairs, chosen = polite help,
rejected = a rude refusal; validation uses topics absent from train) and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_PAIRS = 64


def generated_folder() -> Path | None:
    """The newest folder under outputs/ with >= 64 train pairs and a validation split."""
    import pyarrow.parquet as pq

    candidates = sorted((p.parent for p in (ROOT / "outputs").glob("*/prefs")),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in candidates:
        train = list((folder / "prefs").glob("train-*.parquet"))
        rows = sum(pq.read_metadata(f).num_rows for f in train)
        if rows >= MIN_PAIRS and list((folder / "prefs").glob("validation-*.parquet")):
            return folder
    return None


def synthetic_folder(where: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from train_fixtures import write_run_dir

    return write_run_dir(where / "synthetic-run", {"train": MIN_PAIRS, "validation": 16})


def eval_point(entry: dict) -> dict:
    return {k: float(f"{entry[f'eval_{k}']:.4g}") for k in ("loss", "rewards/accuracies", "rewards/margins")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--learning-rate", type=float, default=5e-6)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    from selfalign.train.config import TrainSettings
    from selfalign.train.data import DataSource
    from selfalign.train.run import train

    scratch = Path(tempfile.mkdtemp(prefix="dpo-smollm2-"))
    data = args.data or generated_folder()
    source = "generated" if data else "synthetic (templated polite vs rude answers)"
    data = data or synthetic_folder(scratch)
    settings = TrainSettings(
        kind="dpo", data=[DataSource(data)], out=args.out or scratch / "model", model=None,
        epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
        max_length=256, beta=0.1, seed=0,
        # Evaluate before the first step and (selfalign does this) after the last, not in between:
        # on 2 CPU cores one evaluation of 16 pairs costs about a minute.
        overrides={"eval_on_start": True, "eval_strategy": "steps", "eval_steps": 10**6, "logging_steps": 1,
                   "gradient_checkpointing": False, "save_strategy": "no", "disable_tqdm": True})
    record = train(settings)

    evals = [e for e in record["log_history"] if "eval_loss" in e]
    losses = [e["loss"] for e in record["log_history"] if "loss" in e]
    summary = {
        "data": str(data), "data_source": source, "rows": record["rows"],
        "steps": record["metrics"]["global_step"],
        "train_loss_step_1": float(f"{losses[0]:.4g}"), "train_loss_last_step": float(f"{losses[-1]:.4g}"),
        "eval_before": eval_point(evals[0]), "eval_after": eval_point(evals[-1]),
        "wall_time_s": record["wall_time_s"], "model_dir": str(settings.out),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
