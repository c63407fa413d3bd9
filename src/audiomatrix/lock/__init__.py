"""The second stage, cells -> environments/<cell>/: one hash-pinned lock per cell and the record
of how it was resolved, by the installer the cell declares."""
