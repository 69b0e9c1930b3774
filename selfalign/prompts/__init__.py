"""Prompt sources (readers) and preparation (normalise, dedup, cap, PII, language, split)."""
