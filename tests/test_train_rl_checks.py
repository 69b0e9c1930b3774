"""`train rl --reward checks`: the reward worked out by hand, the errors before any model loads,
and real RLOO steps that raise the held-out pass rate of a rule (marked `train`), recomputed
from the saved policy one prompt at a time."""

from __future__ import annotations

import json
import re

import pytest

import selfalign.constitution
from selfalign.checks import build_check
from selfalign.errors import UserError
from selfalign.records import PromptRecord
from selfalign.train.rl.checks_reward import ChecksReward, checks_reward, prompt_checks
from selfalign.train.rl.run import plan_rl, train_rl
from selfalign.train.rl.settings import RLSettings
from selfalign.train.rl.watch import WatchPoint, findings
from premise import TEST_SEED
from train_fixtures import HELD_OUT_TOPICS, TOPICS, greedy_answer_one_row, held_out_prompts

FAST = {"disable_tqdm": True}
SAYS_YES = {"instruction_id_list": ["regex"], "kwargs": [{"pattern": "(?i)yes"}]}


def record(pid: str, text: str = "Hi?", **metadata) -> PromptRecord:
    return PromptRecord(id=pid, prompt=text, source="prompts.jsonl", line=int(pid[1:]),
                        metadata=metadata)


def answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_the_reward_is_the_share_of_the_prompts_checks_passed():
    """p1 has two checks (fewer than 4 words; "yes"), p2 one ("cannot")."""
    reward = ChecksReward(
        {"p1": (build_check({"kind": "length_constraints:number_words", "relation": "less than",
                             "num_words": 4}), build_check({"kind": "regex", "pattern": "yes"})),
         "p2": (build_check({"kind": "regex", "pattern": "cannot"}),)},
        {"p1": "Say yes?", "p2": "Help?"})
    shares = reward(None, [answer("yes"), answer("no"), answer("well yes I do"), answer("I cannot."),
                           answer("Sure.")], prompt_id=["p1", "p1", "p1", "p2", "p2"])
    assert shares == [1.0, 0.5, 0.5, 1.0, 0.0]
    assert reward(None, ["yes"], prompt_id=["p1"]) == [1.0]  # plain-text completions too
    # All of a prompt's checks, as eval counts: "yes" and "I cannot." pass; "no" does not.
    assert reward.pass_rate(["p1", "p1", "p2"], ["yes", "no", "I cannot."]) == pytest.approx(2 / 3)


def test_ifeval_rows_bring_their_own_checks_and_others_take_the_principles(monkeypatch, tmp_path):
    def loaded(paths):
        constitution = load(paths)
        for principle in constitution.principles:
            object.__setattr__(principle, "checks", (build_check({"kind": "regex",
                                                                  "pattern": "ok"}),))
        object.__setattr__(constitution, "checks", (build_check(
            {"kind": "regex", "pattern": "!", "must": "not_match"}),))
        return constitution

    load = selfalign.constitution.load_constitution
    monkeypatch.setattr(selfalign.constitution, "load_constitution", loaded)
    folder = tmp_path / "principles"
    folder.mkdir()
    (folder / "brief.yaml").write_text("name: brief\ncritique_request: c\nrevision_request: r\n")
    checks = prompt_checks([record("p1", **SAYS_YES), record("p2")], [str(folder)])
    assert [c.spec() for c in checks["p1"]] == [{"kind": "regex", "pattern": "(?i)yes",
                                                  "must": "match"}]
    assert [c.spec()["pattern"] for c in checks["p2"]] == ["ok", "!"]


def test_a_prompt_with_no_checks_is_refused():
    with pytest.raises(UserError, match=r"--reward checks: prompt 'p2' \(prompts.jsonl:2\) has "
                                        r"no checks: .* no --principles were given"):
        prompt_checks([record("p1", **SAYS_YES), record("p2")], [])


def test_an_unknown_instruction_names_the_file_and_line():
    with pytest.raises(UserError, match=r"--prompts prompts.jsonl:3: instruction_id_list: "
                                        r"Unknown check kind 'regexp'. Did you mean: regex\?"):
        checks_reward([record("p3", instruction_id_list=["regexp"], kwargs=[{}])], [])


def test_checks_weight_sits_beside_the_reward_models_one(tmp_path):
    settings = RLSettings(prompts=["x"], out=tmp_path, reward="rm+checks", reward_model="rm",
                          checks_weight=2.5)
    assert settings.cli_fields()["reward_weights"] == [1.0, 2.5]
    assert "reward_weights" not in RLSettings(prompts=["x"], out=tmp_path,
                                              reward="checks").cli_fields()
    with pytest.raises(UserError, match="--checks-weight weighs the checks' reward, but --reward "
                                        "rm has none"):
        RLSettings(prompts=["x"], out=tmp_path, reward_model="rm", checks_weight=1.0)
    with pytest.raises(UserError, match="--checks-weight and --reward-weights both"):
        RLSettings(prompts=["x"], out=tmp_path, reward="rm+checks", reward_model="rm",
                   checks_weight=1.0, reward_weights=[1.0, 1.0])


def test_the_watch_says_whether_the_pass_rate_rose():
    start, end = WatchPoint(8, None, None, 4.0, 0.0), WatchPoint(8, None, None, 3.0, 0.875)
    assert ("Held-out answers passing all their checks rose: 0.000 → 0.875 (8 prompts; answers "
            "4.0 → 3.0 tokens).") in findings(start, end)
    assert any("did not rise: 0.875 → 0.875" in n for n in findings(end, end))


def test_the_watch_warns_when_one_side_of_a_rule_is_bought_with_the_other():
    """The measured case: RL on decline-or-answer's checks with 104 should-refuse and 72
    should-comply train prompts; the overall held-out share rose 0.438 → 0.688 while the policy
    learned to decline everything (XSTest's safe prompts answered 99.2% → 15.6%)."""
    def point(overall, refuse, comply):
        return WatchPoint(16, None, None, 32.0, overall, {"comply": comply, "refuse": refuse})
    notes = findings(point(0.438, 0.0, 1.0), point(0.688, 1.0, 0.286))
    assert ("WARNING: by expected behaviour, held-out answers passing their checks moved comply "
            "1.000 → 0.286, refuse 0.000 → 1.000: refuse rose while comply fell") in notes[-1]
    both_rose = findings(point(0.4, 0.2, 0.6), point(0.7, 0.5, 0.9))[-1]
    assert both_rose == ("By expected behaviour, held-out answers passing their checks: comply "
                         "0.600 → 0.900, refuse 0.200 → 0.500.")
    within_noise = findings(point(0.4, 0.2, 0.6), point(0.5, 0.5, 0.57))[-1]
    assert not within_noise.startswith("WARNING")  # a fall of 0.03 is within SIDE_DROP


def test_the_watch_scores_each_behaviour_over_its_own_prompts():
    from selfalign.train.rl.watch import _pass_by_behavior
    rows = [{"prompt_id": "r1", "behavior": "refuse"}, {"prompt_id": "c1", "behavior": "comply"},
            {"prompt_id": "c2", "behavior": "comply"}, {"prompt_id": "u1", "behavior": None}]
    seen = []

    def share(ids, answers):
        seen.append((ids, answers))
        return sum(a == "ok" for a in answers) / len(answers)
    assert _pass_by_behavior(share, rows, ["ok", "no", "ok", "ok"]) == {"comply": 0.5,
                                                                          "refuse": 1.0}
    assert seen == [(["c1", "c2"], ["no", "ok"]), (["r1"], ["ok"])]
    assert _pass_by_behavior(share, rows[3:], ["ok"]) is None


# ---------------------------------------------------------------- real RLOO steps

# From the trait SFT model at learning rate 3e-3: the train reward rose from 0.125 to about 0.6
# by the eighth step, and the greedy answers to the held-out prompts all said "yes" by the tenth.
# At 1e-2 the sampled answers all said "yes" by the fourth step but the greedy ones became
# newlines: a rate that high trains the mode away from what it rewards.
STEPS, RL_RATE = 10, 3e-3
TOKENS = 4


def write_instructed_prompts(path, train: int, validation: int):
    """IFEval-format rows whose one instruction is to say "yes", with a `split` column."""
    rows = [{"id": f"t{i}", "prompt": f"How do I {TOPICS[i % len(TOPICS)]}?", "split": "train",
             **SAYS_YES} for i in range(train)]
    rows += [{"id": f"v{i}", "prompt": f"How do I {HELD_OUT_TOPICS[i]}?", "split": "validation",
              **SAYS_YES} for i in range(validation)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.train
def test_rl_on_checks_raises_the_held_out_pass_rate(says_no_sft, tmp_path):
    """The watch's pass rates, recomputed from the models one prompt at a time: none of the SFT
    policy's greedy answers to the 8 held-out prompts says "yes" (the fixture checks it, and that
    sampling finds "yes" now and then); after RL on the checks most do (all 8 at every seed and
    thread count tried)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = write_instructed_prompts(tmp_path / "prompts.jsonl", train=16, validation=8)
    settings = RLSettings(prompts=[str(prompts)], out=tmp_path / "out", model=str(says_no_sft),
                          reward="checks", beta=0.001, max_steps=STEPS, learning_rate=RL_RATE,
                          batch_size=8, samples=4, max_completion_length=TOKENS,
                          sample_every=1000, seed=TEST_SEED, overrides=FAST)
    assert plan_rl(settings).checks is not None
    record = train_rl(settings)
    assert record["reward_sources"]["checks"] == {"principles": [],
                                                  "prompts_with_own_instructions": 24}
    logged = [e for e in record["log_history"] if "rewards/checks/mean" in e]
    assert len(logged) == STEPS

    tokenizer = AutoTokenizer.from_pretrained(says_no_sft)
    held_out = held_out_prompts()
    rates = {}
    for moment, folder in (("start", says_no_sft), ("end", settings.out)):
        policy = AutoModelForCausalLM.from_pretrained(folder).eval()
        answers = [greedy_answer_one_row(policy, tokenizer, p, TOKENS) for p in held_out]
        rates[moment] = sum(bool(re.search("(?i)yes", a)) for a in answers) / 8
        assert record["watch"][moment]["checks_pass_rate"] == pytest.approx(rates[moment]), \
            (moment, answers)
    assert rates["start"] == 0.0
    assert rates["end"] >= 0.75, rates
    assert any("passing all their checks rose" in n for n in record["watch"]["findings"])
    assert "checks pass rate" in (settings.out / "report.md").read_text()
