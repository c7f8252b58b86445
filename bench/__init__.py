"""Benchmarks of qqgate (scripts, not tests): see bench/README.md."""
