from audiomatrix.cli.app import run

run()
