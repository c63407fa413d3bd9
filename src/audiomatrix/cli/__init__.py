"""The `audiomatrix` command: options and commands only; the stages do the work."""
