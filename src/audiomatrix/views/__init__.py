"""The table for people: COMPATIBILITY.md, the offline page, the terminal grid, and the questions
asked of a finished table (diff, recommend)."""
