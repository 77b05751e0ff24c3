"""The smolqwery benchmark (issue 8): export throughput against the ORM floor and 0.1.3's writes.

Run it with ``bench/run`` or ``python -m bench`` from the repository root; ``--help`` lists the
options. Nothing here is imported by smolqwery or by its tests (except a smoke test that runs the
command end to end on a few rows).
"""
