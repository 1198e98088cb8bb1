"""What several test modules share: numpy references, tiny models, the
subprocess runner, the doctest check, the example loader, LiteRT, and the
scripts that subprocess tests run (scripts/)."""
