"""The generate run: settings, the per-conversation flow, shards, ledger/resume, writers, card."""
