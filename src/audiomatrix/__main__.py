from audiomatrix.cli import run

run()
