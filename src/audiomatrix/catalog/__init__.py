"""The catalog of known failures (signatures.yaml): what an error text means, its remedy, and
the version boundaries measured by real installs. The table classifies with it."""
