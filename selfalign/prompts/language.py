"""Language identification with py3langid, restricted to labels that hold up on short prompts.

The full py3langid model has 140 labels; on one-line prompts classical, constructed and
micro-regional labels win too often ("Explain quantum computing simply." -> la, "Describe a
cat." -> an, "你好" -> yue). Keeping the ISO 639-1 (two-letter) labels minus the ones below
took a 47-sentence check (en, zh, es, fr, de) from 43 to 46 correct. See docs/prompts.md.
"""

from __future__ import annotations

from functools import lru_cache

from selfalign.records import PromptRecord, Reject

UNDETERMINED = "und"
EXCLUDED_LABELS = frozenset({"la", "an", "lb", "eo", "vo", "oc", "wa", "sa", "fo", "se", "st"})


@lru_cache(maxsize=1)
def _identifier():
    import numpy as np
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([x for x in identifier.labels if len(x) == 2 and x not in EXCLUDED_LABELS])
    # The model ships float16 tables; numpy multiplies float16 without BLAS, about 3x slower.
    # A float32 copy costs about 40 MB and gives the same labels.
    identifier.nb_ptc = np.ascontiguousarray(identifier.nb_ptc, dtype=np.float32)
    identifier.nb_pc = np.asarray(identifier.nb_pc, dtype=np.float32)
    return identifier


def language_labels() -> list[str]:
    """Every label detect_language can return, `und` included."""
    return sorted(_identifier().labels) + [UNDETERMINED]


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or `und` for text without letters."""
    if not any(ch.isalpha() for ch in text):
        return UNDETERMINED
    return _identifier().classify(text)[0]


class LanguageStep:
    """Labels each prompt's language from all its user turns; with `allowed`, drops the others as
    `language:<code>`."""

    def __init__(self, allowed: frozenset[str] | None = None) -> None:
        self.allowed = allowed

    def check(self, record: PromptRecord) -> Reject | None:
        record.language = detect_language("\n".join(record.user_turns()))
        if self.allowed is None or record.language in self.allowed:
            return None
        wanted = ",".join(sorted(self.allowed))
        return Reject(f"language:{record.language}", f"detected {record.language}, kept only {wanted}")
