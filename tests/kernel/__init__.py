"""The pure decisions, driven with hand-built records and no store at all."""
