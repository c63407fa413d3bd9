"""The fourth stage, host side, environments/<cell>/ (and its image) -> results/<cell>/<run>.json:
the suite run in a container or natively, its output collected into one run record."""
