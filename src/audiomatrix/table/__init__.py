"""The fifth stage, results/ -> the table: which runs stand for their cells, their GPU kernels,
golden outputs, known failures and proven remedies (compatibility.json)."""
