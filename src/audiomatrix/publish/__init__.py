"""The last stage and what takes the matrix past one machine: images pushed with SBOMs, the CI
workflow, the bake file and tox environments."""
