"""The files the stages write, one typed model per file, with its validating reader: the
writing stage and every later one that reads the file share the one shape."""
