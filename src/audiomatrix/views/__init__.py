"""The table for people: COMPATIBILITY.md (markdown), the offline page (page), the terminal grid
(grid, grid_text), the words they share (labels), the files the report writes (writers), and
the questions asked of a finished table (diff, recommend)."""
