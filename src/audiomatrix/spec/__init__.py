"""The first stage, matrix.yaml -> cells: the file read with positions, validated, expanded and
selected from, every mistake a one-line positioned error."""
