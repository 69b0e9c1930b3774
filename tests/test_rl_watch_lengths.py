"""The reward-hacking watch counts each answer's tokens whatever the batch around it: the
padding that fills the rows of shorter answers is never counted, the answer's own tokens are."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from selfalign.train.rl.watch import policy_answers, watch_point  # noqa: E402

# What the stand-in policy answers to each prompt (greedy): token ids, ending at the stop token
# or cut at max_new_tokens.
EOS = 2
ANSWERS = {"a": [11, 12, EOS], "b": [13, EOS], "c": [14, 15, 16, 17, 18, 19]}
MAX_NEW = 4


class Batch(dict):
    def to(self, device):
        return self


class StandInTokenizer:
    """One token per prompt; decodes ids as their numbers."""

    def __init__(self, pad: int):
        self.pad_token_id, self.eos_token_id, self.padding_side = pad, EOS, "right"

    def apply_chat_template(self, conversation, add_generation_prompt, tokenize):
        return conversation[-1]["content"]

    def __call__(self, prompts, return_tensors, padding, add_special_tokens):
        assert self.padding_side == "left"
        ids = torch.tensor([[ord(p)] for p in prompts])
        return Batch(input_ids=ids, attention_mask=torch.ones_like(ids))

    def decode(self, ids, skip_special_tokens):
        return " ".join(str(i) for i in ids if not (skip_special_tokens and i in (0, EOS)))


class StandInPolicy:
    """Generates as Hugging Face's `generate` returns: each row its prompt and answer, finished
    rows filled with `pad_token_id` up to the batch's longest answer."""

    training, device = False, "cpu"

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def generate(self, input_ids, attention_mask, max_new_tokens, do_sample, pad_token_id):
        answers = [ANSWERS[chr(row[-1])][:max_new_tokens] for row in input_ids.tolist()]
        width = max(len(a) for a in answers)
        rows = [prompt + answer + [pad_token_id] * (width - len(answer))
                for prompt, answer in zip(input_ids.tolist(), answers)]
        return torch.tensor(rows)


def conversations(*names):
    return [[{"role": "user", "content": name}] for name in names]


@pytest.mark.parametrize("pad", [EOS, 0])  # the pad token set to EOS (as training does), or not
def test_an_answers_length_is_the_same_alone_and_in_a_batch(pad):
    tokenizer, policy = StandInTokenizer(pad), StandInPolicy()
    texts, batched = policy_answers(policy, tokenizer, conversations("a", "b", "c"), MAX_NEW)
    alone = [policy_answers(policy, tokenizer, conversations(n), MAX_NEW)[1][0] for n in "abc"]
    assert batched == alone
    # By hand: "a" is 11 12 and its stop token, "b" 13 and its stop token, "c" cut at 4 tokens;
    # the stop token counts when it is not also the padding.
    stop = 0 if pad == EOS else 1
    assert batched == [2 + stop, 1 + stop, 4]
    assert texts == ["11 12", "13", "14 15 16 17"]
    assert tokenizer.padding_side == "right"  # given back as it was


def test_the_watch_points_mean_length_is_of_the_answers_alone():
    rows = [{"prompt": c, "prompt_id": n} for c, n in zip(conversations("a", "b", "c"), "abc")]
    point = watch_point(StandInPolicy(), StandInTokenizer(EOS), rows, MAX_NEW, None, None)
    assert point.mean_length == pytest.approx((2 + 1 + 4) / 3)
