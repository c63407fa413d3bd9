"""audiomatrix: which torch, torchaudio, Python and GPU builds work for real audio-ML stacks."""
