"""Scripts that subprocess tests run as files, in a fresh process (never imported by the tests)."""
