"""`selfalign train rl`: checks before a model loads, the judge reward by hand, the RM reward's
tokens against `train rm`'s, and real RLOO steps on a tiny random Llama (marked `train`)."""

import json
import math

import pyarrow.parquet as pq
import pytest
import torch

from selfalign.constitution.model import ConstitutionError
from selfalign.errors import UserError
from selfalign.train.rl.judge import JudgeReward, answer_all
from selfalign.train.rl.run import build_trainer, plan_rl, train_rl
from selfalign.train.rl.settings import RLSettings
from selfalign.train.run import RECORD_NAME
from premise import TEST_SEED, fixture_broke
from scripted_engine import ScriptedEngine
from train_fixtures import (HELD_OUT_TOPICS, TOPICS, finite_losses, greedy_answer_one_row,
                            held_out_prompts, rm_score_one_row, write_ranked_run_dir)

FAST = {"disable_tqdm": True}


def write_prompts(path, train: int, validation: int = 0):
    """A JSONL of prompts with a `split` column, as a prepared folder would split them."""
    rows = [{"id": f"t{i}", "prompt": f"How do I {TOPICS[i % len(TOPICS)]}?", "split": "train"}
            for i in range(train)]
    rows += [{"id": f"v{i}", "prompt": f"How do I {HELD_OUT_TOPICS[i]}?", "split": "validation"}
             for i in range(validation)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_rm_dir(tiny_model_dir, tmp_path_factory):
    """A reward model folder written by `train rm` (one step) from the tiny Llama."""
    from selfalign.train.config import TrainSettings
    from selfalign.train.data import DataSource
    from selfalign.train.run import train

    root = tmp_path_factory.mktemp("rm")
    data = write_ranked_run_dir(root / "ranked", {"train": [3, 2]})
    train(TrainSettings(kind="rm", data=[DataSource(data)], out=root / "rm",
                        model=str(tiny_model_dir), max_steps=1, batch_size=2,
                        overrides={**FAST, "save_strategy": "no", "max_length": 96}))
    return root / "rm"


@pytest.fixture(scope="session")
def rm_dir(tiny_model_dir, tmp_path_factory):
    """A reward model folder built the way `train rm` saves one, without training: the tiny
    Llama with a one-output head, and its tokenizer. For the checks that load no model."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("rm-untrained")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


def rl_settings(tmp_path, model, rm, train=8, validation=0, **kw):
    prompts = write_prompts(tmp_path / "prompts.jsonl", train, validation)
    kw.setdefault("seed", TEST_SEED)
    return RLSettings(prompts=[str(prompts)], out=tmp_path / "out", model=str(model),
                      reward_model=str(rm) if rm else None,
                      overrides={**FAST, **kw.pop("overrides", {})}, **kw)


# ---------------------------------------------------------------- errors before training

def error_of(settings) -> str:
    with pytest.raises(UserError) as err:
        plan_rl(settings)
    return str(err.value)


def test_batch_not_divisible_by_samples(tmp_path, tiny_model_dir, rm_dir):
    message = error_of(rl_settings(tmp_path, tiny_model_dir, rm_dir, batch_size=6, samples=4))
    assert message == ("a generation batch of 6 completions (--batch-size 6) does not divide into "
                       "groups of --samples 4; make --batch-size a multiple of 4 (e.g. 4)")


def test_fewer_prompts_than_one_generation_batch(tmp_path, tiny_model_dir, rm_dir):
    settings = rl_settings(tmp_path, tiny_model_dir, rm_dir, train=3, batch_size=8, samples=2,
                           overrides={"gradient_accumulation_steps": 2})
    assert error_of(settings) == (
        "3 train prompt(s), but one generation batch takes 8 (16 completions (--batch-size 8 × 2 "
        "steps per generation) / --samples 2); TRL would train no step. Add prompts, or lower "
        "--batch-size to 6 or below")


def test_reward_model_with_two_labels(tmp_path, tiny_model_dir, rm_dir):
    import shutil

    rm = shutil.copytree(rm_dir, tmp_path / "two")
    config = json.loads((rm / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (rm / "config.json").write_text(json.dumps(config))
    assert error_of(rl_settings(tmp_path, tiny_model_dir, rm)) == (
        f"--reward-model {rm}: the classifier has 2 labels; a reward model has exactly one "
        "(a scalar score)")


def test_causal_lm_is_not_a_reward_model(tmp_path, tiny_model_dir):
    assert "not a sequence classifier (architectures: LlamaForCausalLM)" in error_of(
        rl_settings(tmp_path, tiny_model_dir, tiny_model_dir))


def test_reward_model_without_tokenizer(tmp_path, tiny_model_dir, rm_dir):
    import shutil

    rm = tmp_path / "bare"
    rm.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(rm_dir / name, rm / name)
    message = error_of(rl_settings(tmp_path, tiny_model_dir, rm))
    assert message.startswith(f"--reward-model {rm}: cannot load its tokenizer")
    assert message.endswith("the folder must hold the tokenizer `train rm` saved beside the model")


def test_reward_model_with_another_chat_template(tmp_path, tiny_model_dir, rm_dir):
    import shutil

    rm = shutil.copytree(rm_dir, tmp_path / "other")
    config = json.loads((rm / "tokenizer_config.json").read_text())
    template_file = rm / "chat_template.jinja"
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    if template_file.exists():
        template_file.write_text(template)
    else:
        config["chat_template"] = template
        (rm / "tokenizer_config.json").write_text(json.dumps(config))
    message = error_of(rl_settings(tmp_path, tiny_model_dir, rm))
    assert message.startswith(f"--reward-model {rm}: its chat template differs from the policy's")
    assert "train the reward model from the same family as --model" in message


def test_judge_principle_without_comparison(tmp_path, tiny_model_dir):
    principle = tmp_path / "p.yaml"
    principle.write_text("name: be-kind\ncritique_request: Is it kind?\n"
                         "revision_request: Make it kind.\n")
    settings = rl_settings(tmp_path, tiny_model_dir, None, reward="judge",
                           principles=[str(principle)])
    with pytest.raises(ConstitutionError) as err:
        plan_rl(settings)
    assert "principle 'be-kind' has no comparison question" in str(err.value)
    assert str(principle) in str(err.value)


def test_settings_refused_on_creation(tmp_path):
    with pytest.raises(UserError, match="give --reward-model DIR"):
        RLSettings(prompts=["p"], out=tmp_path, reward="rm+judge", principles=["x"])
    with pytest.raises(UserError, match="need at least 2"):
        RLSettings(prompts=["p"], out=tmp_path, reward_model="rm", samples=1)
    with pytest.raises(UserError, match=r"1 weight\(s\) for 2 reward source\(s\) \(rm, judge\)"):
        RLSettings(prompts=["p"], out=tmp_path, reward_model="rm", reward="rm+judge",
                   principles=["x"], reward_weights=[1.0])


@pytest.fixture
def on_a_cpu(monkeypatch):
    """This machine seen as one without CUDA, so the CPU defaults are checked on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_defaults_keep_the_kl_leash_for_both_algorithms(tmp_path, tiny_model_dir, rm_dir,
                                                        on_a_cpu):
    from trl import GRPOConfig, RLOOConfig

    for algo, cls in (("rloo", RLOOConfig), ("grpo", GRPOConfig)):
        config = plan_rl(rl_settings(tmp_path, tiny_model_dir, rm_dir, algo=algo)).config
        assert isinstance(config, cls)
        assert (config.beta, config.num_generations, config.max_completion_length) == (0.05, 4, 64)
        assert config.gradient_checkpointing is False and config.bf16 is False
    off = plan_rl(rl_settings(tmp_path, tiny_model_dir, rm_dir, algo="grpo", beta=0.0))
    assert off.config.beta == 0.0


def test_no_gradient_checkpointing_on_a_cpu_for_train_rm(tmp_path, on_a_cpu):
    """TRL's configs turn it on; on a CPU it only costs time (about 37 s a step for `train rm`)."""
    from trl import RewardConfig

    from selfalign.train.config import TrainSettings, resolve_config
    from selfalign.train.data import DataSource

    trl_default = RewardConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    assert trl_default.gradient_checkpointing is True  # what the CPU default must override
    data = write_ranked_run_dir(tmp_path / "ranked", {"train": [2]})
    settings = TrainSettings(kind="rm", data=[DataSource(data)], out=tmp_path / "o")
    config, _ = resolve_config(settings, has_validation=False)
    assert config.gradient_checkpointing is False and config.bf16 is False


def test_a_gpu_keeps_trls_gradient_checkpointing_and_takes_bf16_where_it_has_it(monkeypatch):
    from selfalign.train.config import device_defaults

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for bf16 in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
        assert device_defaults() == {"bf16": bf16, "use_cpu": False}


# ---------------------------------------------------------------- the judge reward by hand

def test_judge_reward_is_the_both_order_probability():
    """The scripted judge gives P(A) = 0.8 when the policy's answer is option A and 0.3 when it
    is option B. P(answer ≻ reference) = (0.8 + (1 - 0.3)) / 2 = 0.75 for the good answer;
    for the other, P(A) = 0.4 in both orders: (0.4 + 0.6) / 2 = 0.5."""
    from selfalign.constitution import load_constitution
    from selfalign.stages.judge import shown_options

    def odds(request):
        option_a, option_b = shown_options(request.messages[-1]["content"])
        if "GOOD" in option_a + option_b:
            p_a = 0.8 if "GOOD" in option_a else 0.3
        else:
            p_a = 0.4
        return {"A": math.log(p_a), "B": math.log(1 - p_a)}

    engine = ScriptedEngine(option_logprobs=odds)
    constitution = load_constitution(["principles/harmless"])
    reward = JudgeReward(engine.complete, constitution, {"p1": "the reference", "p2": "ref 2"},
                         seed=3)
    prompts = [[{"role": "user", "content": "Q1"}], [{"role": "user", "content": "Q2"}]]
    completions = [[{"role": "assistant", "content": "GOOD answer"}],
                   [{"role": "assistant", "content": "plain answer"}]]
    import asyncio

    rewards = asyncio.run(reward(prompts, completions, prompt_id=["p1", "p2"]))
    assert rewards == [pytest.approx(0.75), pytest.approx(0.5)]
    judge_calls = [c for c in engine.calls if c.options]
    assert len(judge_calls) == 4  # two completions, two orders each
    shown = [shown_options(c.messages[-1]["content"]) for c in judge_calls]
    assert sum(a.startswith("GOOD") for a, b in shown) == 1
    assert sum(b.startswith("GOOD") for a, b in shown) == 1


def test_reference_answers_one_request_per_prompt():
    import asyncio

    from selfalign.engine.base import SamplingSettings
    from selfalign.records import PromptRecord

    engine = ScriptedEngine()
    records = [PromptRecord(id="a", prompt="Hi?"), PromptRecord(id="b", prompt="Yo?")]
    answers = asyncio.run(answer_all(engine.complete, records, SamplingSettings(max_tokens=8), 0))
    assert answers == {"a": "reply to: Hi?", "b": "reply to: Yo?"}
    assert [c.stage for c in engine.calls] == ["reference", "reference"]


# ---------------------------------------------------------------- the reward-hacking watch

def test_watch_says_when_rm_rose_but_the_judge_and_lengths_disagree():
    from selfalign.train.rl.watch import WatchPoint, findings

    start = WatchPoint(prompts=8, rm_reward=0.10, judge_win_rate=0.50, mean_length=20.0)
    end = WatchPoint(prompts=8, rm_reward=0.90, judge_win_rate=0.40, mean_length=40.0)
    assert findings(start, end) == [
        "WARNING: RM reward rose from 0.100 to 0.900 while the judge's win rate against the "
        "reference fell from 0.500 to 0.400: the policy may be exploiting the reward model.",
        "WARNING: RM reward rose from 0.100 to 0.900 while answers grew from 20.0 to 40.0 "
        "tokens: part of the rise may be length, which reward models tend to favour.",
        "Judge win rate against the reference: 0.500 → 0.400."]
    agreeing = WatchPoint(prompts=8, rm_reward=0.90, judge_win_rate=0.55, mean_length=22.0)
    assert findings(start, agreeing)[0] == (
        "RM reward rose from 0.100 to 0.900; the judge's win rate and the answers' length tell "
        "the same story (no sign of reward hacking in these figures).")
    unjudged = findings(WatchPoint(8, 0.10, None, 20.0), WatchPoint(8, 0.50, None, 18.0))
    assert unjudged == ["RM reward rose from 0.100 to 0.500; the answers' length (20.0 → 18.0 "
                        "tokens; no judge was set) tells the same story (no sign of reward "
                        "hacking in these figures)."]
    fell = WatchPoint(prompts=8, rm_reward=0.05, judge_win_rate=None, mean_length=20.0)
    assert findings(WatchPoint(8, 0.10, None, 20.0), fell) == [
        "RM reward on held-out prompts did not rise (0.100 → 0.050): the policy did not improve "
        "in the reward model's eyes beyond the train prompts."]
    assert findings(None, None)[0].startswith("No held-out prompts")


def test_watch_warns_just_past_its_thresholds_and_not_just_short_of_them():
    """Answers 30% longer and a judge 0.02 lower are the limits (docs/guides/rl.md): 1.31× and
    a fall of 0.025 warn, 1.29× and a fall of 0.015 do not."""
    from selfalign.train.rl.watch import WatchPoint, findings

    start = WatchPoint(prompts=8, rm_reward=0.10, judge_win_rate=0.500, mean_length=20.0)

    def warnings(judge_win_rate, mean_length):
        end = WatchPoint(8, 0.90, judge_win_rate, mean_length)
        return [n for n in findings(start, end) if n.startswith("WARNING")]

    assert warnings(0.485, 25.8) == [] and warnings(0.485, 15.5) == []  # 1.29× either way
    shrank = warnings(0.485, 15.2)  # 20 / 15.2 = 1.316
    assert len(shrank) == 1 and "answers shrank from 20.0 to 15.2 tokens" in shrank[0]
    grew = warnings(0.485, 26.2)
    assert len(grew) == 1 and "answers grew from 20.0 to 26.2 tokens" in grew[0]
    fell = warnings(0.475, 25.8)
    assert len(fell) == 1 and "fell from 0.500 to 0.475" in fell[0]


def test_cli_error_names_the_numbers_without_traceback(tmp_path, tiny_model_dir, rm_dir):
    from click.testing import CliRunner

    from selfalign.cli import main

    prompts = write_prompts(tmp_path / "p.jsonl", 8)
    result = CliRunner().invoke(main, ["train", "rl", "--model", str(tiny_model_dir),
                                       "--prompts", str(prompts), "--reward-model",
                                       str(rm_dir), "--out", str(tmp_path / "o"),
                                       "--batch-size", "6"])
    assert result.exit_code == 2
    assert result.stderr == ("error: a generation batch of 6 completions (--batch-size 6) does "
                             "not divide into groups of --samples 4; make --batch-size a "
                             "multiple of 4 (e.g. 4)\n")


# ---------------------------------------------------------------- real models

@pytest.mark.train
def test_rl_rm_scores_the_tokens_reward_training_saw(tmp_path, tiny_model_dir, tiny_rm_dir):
    """The RM reward tokenises prompt + completion to the very ids RewardTrainer trained on,
    and scores them as the trained model does."""
    from selfalign.train.config import TrainSettings
    from selfalign.train.data import DataSource
    from selfalign.train.rl.reward_model import RewardModelScore, load_reward_tokenizer
    from selfalign.train.run import build_trainer as build_rm_trainer, prepare

    data = write_ranked_run_dir(tmp_path / "ranked", {"train": [2]})
    prepared = prepare(TrainSettings(kind="rm", data=[DataSource(data)], out=tmp_path / "o",
                                     model=str(tiny_rm_dir), overrides={"max_length": 256}))
    trainer = build_rm_trainer(prepared)
    trained_ids = trainer.train_dataset[0]["group_chosen_ids"][0]
    row = prepared.data.train[0]
    scorer = RewardModelScore(str(tiny_rm_dir), load_reward_tokenizer(str(tiny_rm_dir),
                                                                       prepared.tokenizer))
    assert scorer.token_ids([row["prompt"]], [row["chosen"]]) == [trained_ids]
    eos = prepared.tokenizer.eos_token_id
    assert eos in trained_ids  # the end of the answer's turn is scored too
    # One batch of three lengths: the two shorter rows are padded, and each must score as the
    # trained model scores that conversation alone.
    answers = [row["chosen"][0]["content"], "ok", "Start with small steps, then ask."]
    scores = scorer([row["prompt"]] * 3, [[{"role": "assistant", "content": a}] for a in answers])
    model = trainer.model.eval()
    expected = [rm_score_one_row(model, prepared.tokenizer, row["prompt"], a) for a in answers]
    with torch.no_grad():
        assert expected[0] == pytest.approx(
            model(input_ids=torch.tensor([trained_ids])).logits[0, 0].item(), abs=1e-5)
    assert scores == pytest.approx(expected, abs=1e-4)
    assert len(set(expected)) == 3


def lower_half_share(prompts, completions, completion_ids, **_):
    """Dense reward a tiny model learns fast: share of completion tokens in the lower half of
    the vocabulary (DESIGN.md)."""
    return [sum(t < 49152 // 2 for t in ids) / max(len(ids), 1) for ids in completion_ids]


@pytest.mark.train
def test_rloo_raises_a_dense_reward_with_kl_logged(tmp_path, tiny_model_dir, rm_dir):
    from selfalign.train.rl.outputs import RunRecorder, read_metrics

    steps = 4
    settings = rl_settings(tmp_path, tiny_model_dir, rm_dir, train=16, max_steps=steps,
                           learning_rate=0.5, batch_size=8, samples=4, max_completion_length=8,
                           sample_every=1000)
    plan = plan_rl(settings)
    trainer = build_trainer(plan, [lower_half_share], RunRecorder(settings.out, 1000))
    trainer.train()
    logged = [e for e in read_metrics(settings.out) if "reward" in e]
    assert len(logged) == steps
    # The first step's completions come from the untrained policy: about half the tokens are in
    # the lower half of a random model's vocabulary.
    first = logged[0]["reward"]
    if not 0.2 < first < 0.8:
        fixture_broke(f"the random model's first samples have {first:.3f} of their tokens in "
                      "the lower half of the vocabulary, not about half", "train rl")
    last = sum(e["reward"] for e in logged[-3:]) / 3
    assert last > first + 0.2, (first, last)
    assert logged[0]["kl"] == 0  # the policy is still the reference when the first batch is made
    assert all(e["kl"] > 0 for e in logged[1:])


@pytest.mark.train
def test_rl_on_a_train_rm_folder_saves_a_policy_that_generates(tmp_path, tiny_model_dir,
                                                               tiny_rm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = rl_settings(tmp_path, tiny_model_dir, tiny_rm_dir, train=4, validation=2,
                           max_steps=2, learning_rate=1e-2, batch_size=4, samples=2,
                           max_completion_length=6, sample_every=1)
    record = train_rl(settings)
    out = settings.out
    assert record["metrics"]["global_step"] == 2
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in logged if "reward" in e]
    assert len(steps) == 2
    assert {"reward", "reward_std", "rewards/rm/mean", "kl", "completions/mean_length"} <= steps[0].keys()
    saved = json.loads((out / RECORD_NAME).read_text())
    assert saved["kind"] == "rl" and saved["reward_sources"]["rm"]["path"] == str(tiny_rm_dir)
    assert len(saved["reward_sources"]["rm"]["record_sha256"]) == 64  # the rm run's record
    assert saved["prompts"]["train"] == 4 and saved["prompts"]["held_out"] == 2
    # The watch's figures, recomputed one prompt at a time: the start from the model the run
    # began with, the end from the policy it saved.
    from transformers import AutoModelForSequenceClassification

    reward_model = AutoModelForSequenceClassification.from_pretrained(tiny_rm_dir).eval()
    rm_tokenizer = AutoTokenizer.from_pretrained(tiny_rm_dir)
    held_out = held_out_prompts(2)
    for moment, folder in (("start", tiny_model_dir), ("end", out)):
        point = saved["watch"][moment]
        assert point["prompts"] == 2 and point["judge_win_rate"] is None
        assert 0 < point["mean_length"] <= 6
        policy = AutoModelForCausalLM.from_pretrained(folder).eval()
        answers = [greedy_answer_one_row(policy, rm_tokenizer, p, 6) for p in held_out]
        scores = [rm_score_one_row(reward_model, rm_tokenizer, p, a)
                  for p, a in zip(held_out, answers)]
        assert point["rm_reward"] == pytest.approx(sum(scores) / 2, abs=1e-4), moment
    assert saved["watch"]["start"]["rm_reward"] != saved["watch"]["end"]["rm_reward"]
    assert saved["watch"]["findings"]
    assert "## Held-out prompts: start and end" in (out / "report.md").read_text()
    assert (out / "reward_kl.png").stat().st_size > 0
    samples = sorted((out / "samples").glob("*.parquet"))
    assert [p.name for p in samples] == ["step-000000.parquet", "step-000001.parquet"]
    rows = pq.read_table(samples[0]).to_pylist()
    assert len(rows) == 4 and {"step", "prompt_id", "prompt", "completion", "reward_rm"} <= rows[0].keys()

    policy = AutoModelForCausalLM.from_pretrained(out)
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before, after = start.state_dict(), policy.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    generated = policy.generate(**ids, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == ids["input_ids"].shape[1] + 3


# ---------------------------------------------------------------- a reward RL can raise

TRAIT_STEPS, TRAIT_TOKENS = 12, 4
SMALL_BETA, LARGE_BETA = 0.001, 100.0
# The reward run: at 1e-3 it ended (seed 0) on empty answers, which the RM never saw and scored
# no better than "no"; at 3e-3 it reaches "yes".
REWARD_RATE = 3e-3
# The two runs whose --beta is compared: Adam's steps are about the learning rate in size
# whatever the loss's scale, so at 3e-3 even --beta 100 moved the policy (KL 0.3-0.4 against
# 0.7-1.6 at --beta 0.001); at 1e-3 it stays well within half the small beta's KL.
LEASH_RATE = 1e-3


# The trait RM must score "yes" above "no" by more than the rise the RL test asks of the policy.
RM_MARGIN = 3.0


@pytest.fixture(scope="session")
def trait_models(says_no_sft, trait_run, tiny_model_dir, tmp_path_factory):
    """An SFT policy that answers "no" (checked by its fixture), and a `train rm` reward model
    that prefers "yes" by RM_MARGIN on every held-out prompt, both trained from the tiny Llama."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selfalign.train.config import TrainSettings
    from selfalign.train.data import DataSource
    from selfalign.train.run import train

    rm = tmp_path_factory.mktemp("trait-rm") / "rm"
    record = train(TrainSettings(kind="rm", data=[DataSource(trait_run)], out=rm,
                                 model=str(tiny_model_dir), max_steps=20, batch_size=8,
                                 learning_rate=1e-3, max_length=96, seed=TEST_SEED,
                                 overrides={**FAST, "save_strategy": "no"}))
    finite_losses(record["log_history"], "train rl")
    model = AutoModelForSequenceClassification.from_pretrained(rm).eval()
    tokenizer = AutoTokenizer.from_pretrained(rm)
    margins = [rm_score_one_row(model, tokenizer, p, "yes")
               - rm_score_one_row(model, tokenizer, p, "no") for p in held_out_prompts()]
    if min(margins) < RM_MARGIN:
        fixture_broke(f"the trait RM scores \"yes\" above \"no\" by {min(margins):.2f} at least "
                      f"on the held-out prompts, less than {RM_MARGIN}", "train rl")
    return says_no_sft, rm


@pytest.fixture(scope="session")
def trait_runs(trait_models, tmp_path_factory):
    """`train rl` against the trait reward model: the reward run, and a small and a large
    --beta at a lower learning rate, same seed."""
    sft, rm = trait_models
    runs = {}
    for name, beta, rate in (("reward", SMALL_BETA, REWARD_RATE),
                             (SMALL_BETA, SMALL_BETA, LEASH_RATE),
                             (LARGE_BETA, LARGE_BETA, LEASH_RATE)):
        folder = tmp_path_factory.mktemp(f"rl-{name}")
        settings = rl_settings(folder, sft, rm, train=16, validation=8, beta=beta,
                               max_steps=TRAIT_STEPS, learning_rate=rate, batch_size=8,
                               samples=4, max_completion_length=TRAIT_TOKENS, sample_every=1)
        runs[name] = (settings, train_rl(settings))
    return runs


@pytest.mark.train
def test_rl_raises_the_reward_models_score_on_held_out_prompts(trait_models, trait_runs):
    """The watch's held-out figures, recomputed here one prompt at a time from the saved
    models: the SFT policy answers "no" (the RM's dislike; its fixture checks it), the trained
    one never does, and the RM's score rises by more than 2 (the fixture checks that "yes" beats
    "no" by RM_MARGIN)."""
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification,
                              AutoTokenizer)

    sft, rm = trait_models
    settings, record = trait_runs["reward"]
    start, end = record["watch"]["start"], record["watch"]["end"]
    assert start["prompts"] == end["prompts"] == 8
    assert end["rm_reward"] > start["rm_reward"] + 2.0, (start, end)
    assert any("RM reward rose from" in note for note in record["watch"]["findings"])

    tokenizer = AutoTokenizer.from_pretrained(rm)
    reward_model = AutoModelForSequenceClassification.from_pretrained(rm).eval()
    held_out = held_out_prompts()
    for moment, folder in (("start", sft), ("end", settings.out)):
        policy = AutoModelForCausalLM.from_pretrained(folder).eval()
        answers = [greedy_answer_one_row(policy, tokenizer, p, TRAIT_TOKENS) for p in held_out]
        scores = [rm_score_one_row(reward_model, tokenizer, p, a)
                  for p, a in zip(held_out, answers)]
        assert record["watch"][moment]["rm_reward"] == pytest.approx(sum(scores) / 8, abs=1e-3)
        said_no = sum(a.strip() == "no" for a in answers)
        assert said_no == (8 if moment == "start" else 0), (moment, answers)


@pytest.mark.train
def test_the_trainer_scores_what_the_watch_scores_and_pushes_up_the_preferred(trait_models,
                                                                             trait_runs):
    """First generation batch (the policy is still the reference, so KL is 0): each sampled
    completion's reward equals a one-row forward pass of the RM on the same prompt and text, and
    its advantage is its reward minus the mean reward of the other completions of its prompt."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _, rm = trait_models
    settings, _ = trait_runs["reward"]
    rows = pq.read_table(settings.out / "samples" / "step-000000.parquet").to_pylist()
    assert len(rows) == 8
    tokenizer = AutoTokenizer.from_pretrained(rm)
    reward_model = AutoModelForSequenceClassification.from_pretrained(rm).eval()
    for row in rows:
        assert row["reward_rm"] == pytest.approx(
            rm_score_one_row(reward_model, tokenizer, row["prompt"], row["completion"]), abs=1e-4)
    decided = 0
    for prompt_id in {r["prompt_id"] for r in rows}:
        group = [r for r in rows if r["prompt_id"] == prompt_id]
        assert len(group) == 4
        for r in group:
            others = [o["reward_rm"] for o in group if o is not r]
            assert r["advantage"] == pytest.approx(r["reward_rm"] - sum(others) / 3, abs=1e-4)
        rewards = sorted(r["reward_rm"] for r in group)
        if rewards[-1] - rewards[0] > 1e-3:  # four alike (all "no") have nothing to prefer
            decided += 1
            assert max(group, key=lambda r: r["reward_rm"])["advantage"] > 0
    assert decided >= 1


def answer_kl(policy, reference, tokenizer, prompts, max_new_tokens) -> float:
    """Mean over answer tokens of KL(policy ‖ reference) of the next-token distributions, along
    the reference's greedy answers to `prompts`: how far the policy moved from its start."""
    from torch.nn import functional as F

    total, tokens = 0.0, 0
    for prompt in prompts:
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            full = reference.generate(input_ids=ids, max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=tokenizer.pad_token_id)
            positions = slice(ids.shape[1] - 1, full.shape[1] - 1)
            log_p = F.log_softmax(policy(input_ids=full).logits[0, positions], dim=-1)
            log_q = F.log_softmax(reference(input_ids=full).logits[0, positions], dim=-1)
        total += (log_p.exp() * (log_p - log_q)).sum().item()
        tokens += full.shape[1] - ids.shape[1]
    return total / tokens


@pytest.mark.train
def test_a_large_beta_keeps_the_policy_closer_to_the_sft_model(trait_models, trait_runs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft, _ = trait_models
    tokenizer = AutoTokenizer.from_pretrained(sft)
    reference = AutoModelForCausalLM.from_pretrained(sft).eval()
    held_out = held_out_prompts()
    measured, logged = {}, {}
    for beta in (SMALL_BETA, LARGE_BETA):
        settings, record = trait_runs[beta]
        policy = AutoModelForCausalLM.from_pretrained(settings.out).eval()
        measured[beta] = answer_kl(policy, reference, tokenizer, held_out, TRAIT_TOKENS)
        late = [e["kl"] for e in record["log_history"] if "kl" in e][-4:]
        logged[beta] = sum(late) / len(late)
    if measured[SMALL_BETA] < 0.2:  # 0.64 at seed 0; nothing to hold back otherwise
        fixture_broke(f"RL at --beta {SMALL_BETA} barely moved the policy from the SFT model "
                      f"(KL {measured[SMALL_BETA]:.3f} per answer token)", "train rl --beta")
    assert measured[LARGE_BETA] < measured[SMALL_BETA] / 2, measured
    assert logged[LARGE_BETA] < logged[SMALL_BETA] / 2, logged
