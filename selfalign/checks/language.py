"""language: the whole reply in one language, as `langdetect` identifies it."""

from __future__ import annotations

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.text import detect_language

# The languages IFEval's instructions name, by their ISO 639-1 codes.
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi",
    "fr": "French", "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian",
    "bn": "Bengali", "uk": "Ukrainian", "th": "Thai", "ur": "Urdu", "ta": "Tamil",
    "te": "Telugu", "bg": "Bulgarian", "ko": "Korean", "pl": "Polish", "he": "Hebrew",
    "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili", "kn": "Kannada",
    "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
}


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code, code) if code else "undetermined"


class ResponseLanguage(Check):
    kind = "language:response_language"
    summary = "the whole reply is in this language (langdetect; a reply without letters passes)"
    arguments = {"language": Argument("string", "ISO 639-1 code of the language",
                                      choices=tuple(LANGUAGE_NAMES))}
    example = {"language": "de"}

    def verify(self, reply: str, prompt: str) -> Verdict:
        wanted, seen = self.args["language"], detect_language(reply)
        if seen is None:  # IFEval counts a reply it cannot identify as followed
            return Verdict(True, "No language could be identified in your reply; counted as "
                                 "followed.")
        if seen == wanted:
            return Verdict(True, f"Your reply is in {language_name(wanted)}, as asked.")
        return Verdict(False, f"Your reply reads as {language_name(seen)}; it must be entirely "
                              f"in {language_name(wanted)}.")

    def instruction(self) -> str:
        return (f"Your entire reply must be in {language_name(self.args['language'])}; no other "
                f"language is allowed.")


KINDS = (ResponseLanguage,)
