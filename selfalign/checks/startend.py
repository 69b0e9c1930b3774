"""startend: the reply's last words, quotation marks around it."""

from __future__ import annotations

from selfalign.checks.base import Argument, Check, Verdict


class EndPhrase(Check):
    kind = "startend:end_checker"
    summary = "the reply ends with this exact phrase (in any case; closing quotes and spaces aside)"
    arguments = {"end_phrase": Argument("string", "the phrase the reply must end with")}
    example = {"end_phrase": "Is there anything else I can help with?"}

    def verify(self, reply: str, prompt: str) -> Verdict:
        phrase = self.args["end_phrase"].strip()
        ending = reply.strip().strip('"')
        if ending.lower().endswith(phrase.lower()):
            return Verdict(True, f"Your reply ends with {phrase!r}.")
        tail = ending[-len(phrase) - 20:] if ending else ""
        return Verdict(False, f"Your reply must end with {phrase!r}, with nothing after it; it "
                              f"ends with {tail!r}.")

    def instruction(self) -> str:
        return (f"Finish your reply with this exact phrase: {self.args['end_phrase'].strip()} "
                f"No other words should follow it.")


class Quotation(Check):
    kind = "startend:quotation"
    summary = "the whole reply is wrapped in double quotation marks"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        text = reply.strip()
        if len(text) > 1 and text[0] == '"' and text[-1] == '"':
            return Verdict(True, "Your reply is wrapped in double quotation marks.")
        return Verdict(False, 'Your reply must start and end with a double quotation mark (").')

    def instruction(self) -> str:
        return "Wrap your entire reply in double quotation marks."


KINDS = (EndPhrase, Quotation)
