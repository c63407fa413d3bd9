"""The third stage, environments/<cell>/ -> an image per Linux cell: the engine, the base, the
interpreter and FFmpeg packages, the lock split into shared layers, the build."""
