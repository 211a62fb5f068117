"""Benchmarks on the real servers: generated community, measurements, report (``iacs bench``)."""
