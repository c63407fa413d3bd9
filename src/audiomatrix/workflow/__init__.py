"""The pipeline as stages a command runs in turn: the work is the stages' own, the display
the command line's."""
