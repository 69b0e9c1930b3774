"""combination: two different responses, the prompt repeated before the answer."""

from __future__ import annotations

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.text import plural

SEPARATOR = "******"


class TwoResponses(Check):
    kind = "combination:two_responses"
    summary = "two different responses separated by six asterisks ******"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        parts = reply.split(SEPARATOR)
        # Blank text before the first separator or after the last is allowed; between two, not.
        if any(not part.strip() for part in parts[1:-1]):
            return Verdict(False, f"Your reply has an empty response between two {SEPARATOR}; "
                                  f"give exactly two responses separated by {SEPARATOR}.")
        responses = [part.strip() for part in parts if part.strip()]
        if len(responses) != 2:
            return Verdict(False, f"Your reply has {plural(len(responses), 'response')} "
                                  f"separated by {SEPARATOR}; it must have exactly two.")
        if responses[0] == responses[1]:
            return Verdict(False, "Your reply's two responses are the same; they must differ.")
        return Verdict(True, f"Your reply has two different responses separated by {SEPARATOR}.")

    def instruction(self) -> str:
        return (f"Give two different responses, separated by six asterisks ({SEPARATOR}) and "
                f"nothing else.")


class RepeatPrompt(Check):
    kind = "combination:repeat_prompt"
    summary = "the reply starts by repeating the request word for word (in any case)"
    arguments = {"prompt_to_repeat": Argument("string", "the request the reply must start with")}
    example = {"prompt_to_repeat": "Write a haiku about rain."}

    def verify(self, reply: str, prompt: str) -> Verdict:
        request = self.args["prompt_to_repeat"].strip()
        if reply.strip().lower().startswith(request.lower()):
            return Verdict(True, "Your reply starts by repeating the request.")
        return Verdict(False, f"Your reply must start with the request repeated word for word: "
                              f"{request!r}.")

    def instruction(self) -> str:
        return ("First repeat the request word for word, without change and with nothing before "
                "it, then give your answer.")


KINDS = (TwoResponses, RepeatPrompt)
