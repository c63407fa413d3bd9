"""The smoke suite: checks that drive the real audio-ML code paths inside a cell's environment.

Installed into every image and put on the path of every native venv beside audiomatrix.compat;
it needs only what the cell has and never downloads. `python -m audiomatrix.suite.run` runs it.
"""
