"""Content of the fixture's layer asset; the local runtime never puts layers on the path."""
