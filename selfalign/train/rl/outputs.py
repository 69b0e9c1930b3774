"""What an RL run writes while it trains: `metrics.jsonl` (one line per logged step), sample
completions every N steps (`samples/step-NNNNNN.parquet`, each completion with its reward per
source and the advantage the trainer gave it), and at the end `reward_kl.png`.

The recording hooks sit in a small subclass of TRL's trainer (`recording_trainer`): after a
generation batch is scored (rewards, then advantages), and after each log line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfalign.atomic import PARQUET_OPTIONS

METRICS_NAME = "metrics.jsonl"
SAMPLES_DIR = "samples"
PLOT_NAME = "reward_kl.png"


@dataclass
class RunRecorder:
    """Appends metrics and writes sample completions into the output folder."""

    out: Path
    sample_every: int
    recorded_steps: set[int] = field(default_factory=set)

    def __post_init__(self):
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / METRICS_NAME).write_text("")

    def metrics(self, entry: dict[str, Any]) -> None:
        with open(self.out / METRICS_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=float) + "\n")

    def samples(self, step: int, inputs: list[dict], completions: list, rewards,
                names: list[str], advantages: list[float]) -> None:
        """Every completion of this generation batch, with its reward per source and advantage."""
        if step % self.sample_every or step in self.recorded_steps:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.recorded_steps.add(step)
        rows = []
        for index, (example, completion) in enumerate(zip(inputs, completions)):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            rows.append({"step": step, "prompt_id": str(example.get("prompt_id", "")),
                         "prompt": example["prompt"], "completion": text,
                         **{f"reward_{name}": _number(rewards[index, i].item())
                            for i, name in enumerate(names)},
                         "advantage": advantages[index]})
        folder = self.out / SAMPLES_DIR
        folder.mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / f"step-{step:06d}.parquet",
                       **PARQUET_OPTIONS)


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN: the reward source gave none


def recording_trainer(base):
    """`base` (RLOOTrainer or GRPOTrainer) with the recorder's hooks."""

    class Recording(base):
        recorder: RunRecorder | None = None
        _scored: tuple | None = None  # the batch's inputs, completions and rewards

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._scored = (inputs, completions, rewards)
            return rewards

        def _generate_and_score_completions(self, inputs):
            # The advantages exist only once scoring is over: record the batch here, so a sample
            # shows whether the completion the reward preferred was the one pushed up.
            output = super()._generate_and_score_completions(inputs)
            if self.recorder is not None and self.accelerator.is_main_process and self._scored:
                scored_inputs, completions, rewards = self._scored
                self.recorder.samples(self.state.global_step, scored_inputs, completions, rewards,
                                      self.reward_func_names, output["advantages"].tolist())
            self._scored = None
            return output

        def log(self, logs, start_time=None):
            super().log(logs, start_time)
            if self.recorder is not None and self.accelerator.is_main_process:
                self.recorder.metrics(self.state.log_history[-1])

    Recording.__name__ = f"Recording{base.__name__}"
    return Recording


def read_metrics(out: Path) -> list[dict]:
    path = out / METRICS_NAME
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.strip()]


def plot_reward_kl(out: Path, entries: list[dict]) -> Path | None:
    """Reward (mean ± std) and KL against step; None when no step was logged."""
    steps = [e for e in entries if "reward" in e]
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [e["step"] for e in steps]
    reward = [e["reward"] for e in steps]
    std = [e.get("reward_std") or 0.0 for e in steps]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(x, reward, label="reward (mean)")
    top.fill_between(x, [r - s for r, s in zip(reward, std)], [r + s for r, s in zip(reward, std)],
                     alpha=0.2, label="± std")
    for key in sorted({k for e in steps for k in e if k.startswith("rewards/") and k.endswith("/mean")}):
        top.plot(x, [e.get(key) for e in steps], linestyle="--", label=key)
    top.set_ylabel("reward")
    top.legend(fontsize="small")
    bottom.plot(x, [e.get("kl") for e in steps], color="tab:red")
    bottom.set_ylabel("KL to the SFT model")
    bottom.set_xlabel("step")
    figure.tight_layout()
    path = out / PLOT_NAME
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
