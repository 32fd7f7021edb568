"""Benchmarks (`make bench`): each workload runs against the production server and,
in the same run, measures the raw floor (PostgreSQL COPY of the same rows), so its
figure is reported as a ratio that survives a noisy machine.

Results go to bench/results/<workload>.json and docs/benchmarks.md.
"""
