"""Tests of the scripts in examples/ and of the README's code snippets."""
