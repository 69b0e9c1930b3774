"""Shared fixtures: a tiny random Llama made at test time, and the scripted stand-in engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import their helpers (train_fixtures, ...)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_model_load(monkeypatch):
    """Any attempt to build a trainer (which loads the model) fails the test."""
    from selfalign.train import run

    def refuse(prepared):
        raise AssertionError("a model was loaded before the input was checked")
    monkeypatch.setattr(run, "build_trainer", refuse)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and the SmolLM2 tokenizer (never from a hub).

    head_dim 64 and a 4096-token window: vLLM's CPU attention supports that head size, and the
    few-shot prefix of the shipped constitutions fits.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from selfalign.engine.default_model import default_model_path

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, torch_dtype="float32")
    model = LlamaForCausalLM(config)
    # Random weights often settle on a special or whitespace token, which strips to nothing. A
    # zero row gives logit 0, below the largest of ~49k random logits, so greedy decoding writes
    # visible text and the pipeline has answers to critique.
    invisible = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    invisible |= {i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()}
    with torch.no_grad():
        model.get_output_embeddings().weight[sorted(invisible)] = 0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_reward_model(tmp_path_factory) -> Path:
    """A one-label Llama classifier with random weights and the SmolLM2 tokenizer: a reward
    model folder for scoring tests (eval, eval judge), built once per test session."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from selfalign.engine.default_model import default_model_path

    path = tmp_path_factory.mktemp("tiny-rm")
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         num_labels=1, pad_token_id=tokenizer.pad_token_id)
    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# The SFT of the trait tests (`train rl` on an RM and on checks). At learning rate 1e-2 this
# collapsed the tiny model to an empty answer on one machine and not on another; 3e-3 passed at
# every seed and thread count tried (docs/development.md has the sweep).
SAYS_NO_SFT = {"max_steps": 40, "batch_size": 8, "learning_rate": 3e-3, "max_length": 96}


@pytest.fixture(scope="session")
def trait_run(tmp_path_factory) -> Path:
    """write_trait_run_dir's folder: pairs "yes" over "no", SFT rows "no" three times in four."""
    from premise import TEST_SEED
    from train_fixtures import write_trait_run_dir

    return write_trait_run_dir(tmp_path_factory.mktemp("trait") / "run", seed=TEST_SEED)


@pytest.fixture(scope="session")
def says_no_sft(tiny_model_dir, trait_run, tmp_path_factory) -> Path:
    """The tiny Llama tuned on the trait run's SFT rows, checked to answer "no" when greedy to the
    held-out prompts and "yes" now and then when sampled: the start RL needs to show a change."""
    from selfalign.train.config import TrainSettings
    from selfalign.train.data import DataSource
    from selfalign.train.run import train
    from premise import TEST_SEED
    from train_fixtures import check_says_no, finite_losses, held_out_prompts

    out = tmp_path_factory.mktemp("says-no") / "sft"
    record = train(TrainSettings(kind="sft", data=[DataSource(trait_run)], out=out,
                                 model=str(tiny_model_dir), seed=TEST_SEED, **SAYS_NO_SFT,
                                 overrides={"disable_tqdm": True, "save_strategy": "no"}))
    finite_losses(record["log_history"], "train rl")
    check_says_no(out, held_out_prompts(), 4, "train rl")
    return out


@pytest.fixture(scope="session")
def letter_splitting_model_dir(tmp_path_factory) -> Path:
    """A checkpoint folder (config and tokenizer only) whose tokenizer turns "A" into two tokens
    ("▁", "A"), as SentencePiece tokenizers that prepend a space marker can: a judge cannot read
    one option per position from it."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,?!"
    vocab = {"<unk>": 0, "▁": 1, **{c: i + 2 for i, c in enumerate(letters)}}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    path = tmp_path_factory.mktemp("letter-splitting")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>").save_pretrained(path)
    (path / "config.json").write_text(json.dumps({"model_type": "llama",
                                                  "architectures": ["LlamaForCausalLM"]}))
    return path


def pytest_terminal_summary(terminalreporter):
    """Say so when browser tests were skipped (no Chromium or Playwright), never silently."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "test_label_browser" in r.nodeid]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else ""
        terminalreporter.write_line(f"browser tests skipped: {len(skipped)} ({reason})",
                                    yellow=True)
