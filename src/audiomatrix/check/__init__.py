"""`audiomatrix check`: a person's own error, versions or environment against the catalog and
the table, never changing that environment."""
