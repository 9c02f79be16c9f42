"""Checkpoints and formats: Meta's and Hugging Face's layouts, seeded presets, verification against checklists."""
