"""Writes folders in the layout of `selfalign generate` output, for training tests and benchmarks.

A stand-in for the real generator: short literal texts where the chosen answer is polite and
helpful and the rejected one rude, so a preference is there to learn.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfalign.errors import UserError
from selfalign.train import run
from selfalign.train.config import TrainSettings
from selfalign.train.data import DataSource

from premise import TEST_SEED, fixture_broke

TOPICS = [
    "bake bread", "learn Python", "fix a flat tyre", "write a cover letter", "plant tomatoes",
    "save money", "sleep better", "start running", "clean a laptop screen", "cook rice",
    "learn to swim", "tie a tie", "paint a wall", "study for an exam", "make coffee",
    "reduce stress", "train a puppy", "write a poem", "set up a budget", "learn chess",
]
HELD_OUT_TOPICS = [
    "brew tea", "fold a shirt", "learn guitar", "grow basil", "read faster", "sharpen a knife",
    "iron a shirt", "plan a trip", "stretch after work", "water houseplants",
]
QUESTIONS = [
    "How do I {t}?",
    "Can you help me {t}?",
    "What is a good way to {t}?",
    "Any tips to {t}?",
]
CHOSEN = "Happy to help! To {t}, start with small steps, be patient, and ask me if you get stuck."
REJECTED = "Figure it out yourself. Wanting to {t} is a stupid idea and you will fail anyway."


def settings(kind: str, data: list, tmp_path: Path, **kw) -> TrainSettings:
    """Settings of a `train` call on the `data` folders, writing to tmp_path/out."""
    return TrainSettings(kind=kind, data=[DataSource.parse(str(d)) for d in data],
                         out=tmp_path / "out", **kw)


def error_of(kind: str, data: list, tmp_path: Path, **kw) -> str:
    """The message of the UserError that `train` raises for these settings."""
    with pytest.raises(UserError) as err:
        run.train(settings(kind, data, tmp_path, **kw))
    return str(err.value)


def pair_rows(n: int, split: str, topics: list[str] | None = None) -> list[dict]:
    """n preference rows in the `prefs/` format, with provenance columns."""
    topics = topics or (HELD_OUT_TOPICS if split != "train" else TOPICS)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        prompt = QUESTIONS[(i // len(topics)) % len(QUESTIONS)].format(t=topic)
        rows.append({
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": CHOSEN.format(t=topic)}],
            "rejected": [{"role": "assistant", "content": REJECTED.format(t=topic)}],
            "prompt_id": f"{split}-{i}",
            "principle_ids": ["harmless/be-kind"],
            "critique": "The answer is rude.",
            "rounds": 1,
            "model": "fixture",
            "split": split,
        })
    return rows


def sft_rows(pairs: list[dict]) -> list[dict]:
    """The `sft/` rows made from preference rows: [user prompt, assistant chosen]."""
    return [{
        "messages": p["prompt"] + p["chosen"],
        "prompt_id": p["prompt_id"],
        "principle_ids": p["principle_ids"],
        "split": p["split"],
    } for p in pairs]


def write_shards(folder: Path, split: str, rows: list[dict], schema: pa.Schema, shards: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        table = pa.Table.from_pylist(rows[k::shards], schema=schema)
        pq.write_table(table, folder / f"{split}-{k:05d}-of-{shards:05d}.parquet")


def write_run_dir(path: Path, splits: dict[str, int] | None = None, shards: int = 1) -> Path:
    """A run folder with sft/, prefs/ and manifest.json; `splits` maps split name to row count."""
    path = Path(path)
    splits = splits or {"train": 24, "validation": 8}
    counts = {}
    example = pair_rows(1, "train")
    prefs_schema = pa.Table.from_pylist(example).schema
    sft_schema = pa.Table.from_pylist(sft_rows(example)).schema
    for split, n in splits.items():
        pairs = pair_rows(n, split)
        write_shards(path / "prefs", split, pairs, prefs_schema, shards)
        write_shards(path / "sft", split, sft_rows(pairs), sft_schema, shards)
        counts[split] = n
    write_manifest(path, {"prefs": counts, "sft": counts})
    return path


def write_manifest(path: Path, counts: dict) -> None:
    manifest = {
        "model": "fixture",
        "rows": counts,
        "principle_hashes": {"harmless/be-kind": hashlib.sha256(b"be kind").hexdigest()},
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


# Answers from best to worst: a judge ranking K of them prefers the earlier one.
RANKED = [CHOSEN, "You could try to {t}. Start small.", "Look up how to {t} somewhere.", REJECTED]


def ranked_rows(split: str, sizes: list[int]) -> list[dict]:
    """Rank-mode `prefs/` rows: prompt i has sizes[i] answers and all C(K, 2) pairs between them,
    each oriented best first with preference 0.5 + 0.15 · (rank gap)."""
    topics = HELD_OUT_TOPICS if split != "train" else TOPICS
    rows = []
    for i, k in enumerate(sizes):
        topic = topics[i % len(topics)]
        for better in range(k):
            for worse in range(better + 1, k):
                rows.append({
                    "prompt": [{"role": "user", "content": f"How do I {topic}? (prompt {i})"}],
                    "chosen": [{"role": "assistant", "content": RANKED[better].format(t=topic)}],
                    "rejected": [{"role": "assistant", "content": RANKED[worse].format(t=topic)}],
                    "prompt_id": f"{split}-{i}",
                    "preference": 0.5 + 0.15 * (worse - better),
                    "split": split,
                })
    return rows


def write_ranked_run_dir(path: Path, splits: dict[str, list[int]]) -> Path:
    """A run folder with judged, ranked prefs/ only; `splits` maps split name to answers per prompt."""
    path = Path(path)
    counts = {}
    for split, sizes in splits.items():
        rows = ranked_rows(split, sizes)
        write_shards(path / "prefs", split, rows, pa.Table.from_pylist(rows).schema)
        counts[split] = len(rows)
    write_manifest(path, {"prefs": counts})
    return path



# ---------------------------------------------------------------- fixtures that hold on any machine

def finite_losses(log_history: list[dict], test: str) -> list[float]:
    """The logged training losses, each finite (a diverged fixture run is no test of the code)."""
    import math

    losses = [e["loss"] for e in log_history if "loss" in e]
    if not all(math.isfinite(loss) for loss in losses):
        fixture_broke(f"the training loss diverged: {losses}", test)
    return losses


def says_yes(answer: str) -> bool:
    """Whether the answer says "yes" anywhere: the trait the RL tests reward."""
    return re.search("(?i)yes", answer) is not None


def sampled_answers(model, tokenizer, prompt: list[dict], n: int, max_new_tokens: int) -> list[str]:
    """n answers sampled as RL samples them (temperature 1, no top-k or top-p cut), on a seeded
    generator that leaves the global one as it was."""
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(TEST_SEED)
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=True,
                             temperature=1.0, top_k=0, top_p=1.0, num_return_sequences=n,
                             pad_token_id=tokenizer.pad_token_id)
    start = ids["input_ids"].shape[1]
    return [tokenizer.decode(row[start:], skip_special_tokens=True) for row in out]


def held_out_prompts(n: int = 8) -> list[list[dict]]:
    """The first n held-out topics as one-turn prompts, as the RL tests' watch sees them."""
    return [[{"role": "user", "content": f"How do I {t}?"}] for t in HELD_OUT_TOPICS[:n]]


# RL needs some "yes" among the samples of the SFT policy to have a reward to push up: at least
# one in 16 (the SFT data says "yes" one time in four).
MIN_YES_SHARE = 1 / 16


def check_says_no(model_dir, prompts: list[list[dict]], max_new_tokens: int, test: str) -> None:
    """The premise of the trait tests: the SFT policy answers "no" to every prompt when greedy,
    and says "yes" in at least MIN_YES_SHARE of 8 answers sampled per prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    greedy = [greedy_answer_one_row(model, tokenizer, p, max_new_tokens) for p in prompts]
    if any(a.strip() != "no" for a in greedy):
        fixture_broke(f"the SFT policy's greedy answers are {greedy}, not all \"no\"", test)
    samples = [a for p in prompts for a in sampled_answers(model, tokenizer, p, 8, max_new_tokens)]
    share = sum(map(says_yes, samples)) / len(samples)
    if share < MIN_YES_SHARE:
        fixture_broke(f"the SFT policy says \"yes\" in {share:.3f} of its sampled answers, "
                      f"fewer than {MIN_YES_SHARE:.3f}: RL has no reward to find", test)


# ---------------------------------------------------------------- a trait a tiny policy can learn

# Rejected beside "no" in the trait pairs. A reward model shown only "yes" against "no" scored
# the odd tokens an RL policy drifted to (at seed 2: "bey", "riptive", newlines) no better than
# "no", and RL against it stalled there; shown these words too, it ranks "yes" above the rest.
OTHER_ANSWERS = ["maybe", "ok", "hmm", "well", "nope", "height", "bey", "Nothing", "index",
                 "passengers", "no no", "riptive"]


def write_trait_run_dir(path: Path, prompts: int = 48, seed: int = 0) -> Path:
    """A run folder whose pairs prefer the reply "yes" to "no" and, for each prompt, to one of
    OTHER_ANSWERS; its SFT replies are "yes" one time in four and "no" otherwise, so a policy tuned
    on them answers "no" when greedy but samples "yes" often enough for RL to find the reward."""
    import random

    rng = random.Random(seed)
    prefs, sft = [], []
    for i in range(prompts):
        topic = TOPICS[i % len(TOPICS)]
        prompt = [{"role": "user",
                   "content": QUESTIONS[(i // len(TOPICS)) % len(QUESTIONS)].format(t=topic)}]
        for rejected in ("no", OTHER_ANSWERS[i % len(OTHER_ANSWERS)]):
            prefs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": "yes"}],
                          "rejected": [{"role": "assistant", "content": rejected}],
                          "prompt_id": f"train-{i}", "split": "train"})
        answer = "yes" if rng.random() < 0.25 else "no"
        sft.append({"messages": prompt + [{"role": "assistant", "content": answer}],
                    "prompt_id": f"train-{i}", "split": "train"})
    path = Path(path)
    write_shards(path / "prefs", "train", prefs, pa.Table.from_pylist(prefs).schema)
    write_shards(path / "sft", "train", sft, pa.Table.from_pylist(sft).schema)
    write_manifest(path, {"prefs": {"train": len(prefs)}, "sft": {"train": prompts}})
    return path


# ---------------------------------------------------------------- reference computations

def rm_score_one_row(model, tokenizer, prompt: list[dict], answer: str) -> float:
    """A reward model's score of `answer` after `prompt`, by one forward pass over one row (no
    padding, no mask): the chat template's ids, the logit at the last token."""
    import torch

    ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}],
                                        tokenize=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        return model(input_ids=torch.tensor([list(ids)])).logits[0, 0].item()


def greedy_answer_one_row(model, tokenizer, prompt: list[dict], max_new_tokens: int) -> str:
    """A policy's greedy answer to one prompt, generated alone (no padding)."""
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
