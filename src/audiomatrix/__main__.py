from audiomatrix.cli import app

app(prog_name="audiomatrix")
