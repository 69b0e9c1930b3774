"""Reward scores from a tiny one-label classifier made at test time (random weights)."""

from __future__ import annotations

import math

import pytest

from selfalign.errors import UserError
from selfalign.eval.reward import check_reward_model, score_answers


def test_scores_do_not_depend_on_the_batch(tiny_reward_model):
    model = check_reward_model(str(tiny_reward_model))
    conversations = [[{"role": "user", "content": "Name a prime."}],
                     [{"role": "user", "content": "Explain, at length, why the sky is blue."}]]
    answers = ["Seven.", "Sunlight scatters off air molecules, blue light the most."]
    together = score_answers(model, conversations, answers)
    alone = [score_answers(model, [c], [a])[0] for c, a in zip(conversations, answers)]
    assert len(together) == 2 and all(math.isfinite(s) for s in together)
    assert together == pytest.approx(alone, abs=1e-4)  # padding does not change a score


def test_a_causal_model_is_not_a_reward_model(tiny_model_dir):
    with pytest.raises(UserError, match="not a sequence classifier.*LlamaForCausalLM"):
        check_reward_model(str(tiny_model_dir))


def test_the_score_is_the_classifier_s_logit_on_the_answer_in_its_conversation(
        tiny_reward_model):
    """Worked out directly: the chat template of (conversation + answer) through the model; two
    answers to one conversation get two different scores, each the model's own logit."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = check_reward_model(str(tiny_reward_model))
    conversation = [{"role": "user", "content": "Name a prime."}]
    answers = ["Seven.", "I will not tell you that."]
    scores = score_answers(model, [conversation, conversation], answers)

    tokenizer = AutoTokenizer.from_pretrained(tiny_reward_model)
    net = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model).eval()
    expected = []
    for answer in answers:
        text = tokenizer.apply_chat_template(
            conversation + [{"role": "assistant", "content": answer}], tokenize=False)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        assert answer in text
        with torch.no_grad():
            expected.append(float(net(**ids).logits[0, 0]))
    assert len(scores) == 2 and scores == pytest.approx(expected, abs=1e-4)
    assert abs(scores[0] - scores[1]) > 1e-3  # the answer, not only the prompt, is scored


def test_scores_come_back_in_the_given_order(tiny_reward_model):
    # Long and short answers interleaved: batches are formed by length, scores keep their place.
    model = check_reward_model(str(tiny_reward_model))
    answers = [("word " * n).strip() for n in (40, 1, 25, 3, 60, 2, 9, 33, 5, 70)]
    conversations = [[{"role": "user", "content": "Say words."}]] * len(answers)
    forward = score_answers(model, conversations, answers)
    backward = score_answers(model, conversations[::-1], answers[::-1])
    alone = [score_answers(model, conversations[:1], [a])[0] for a in answers[:3]]
    assert len(forward) == 10 and len(set(round(s, 5) for s in forward)) == 10
    assert backward[::-1] == pytest.approx(forward, abs=1e-4)
    assert forward[:3] == pytest.approx(alone, abs=1e-4)
