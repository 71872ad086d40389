"""Benchmarks (they print and write figures; nothing here is a test):
    python -m bench.pipeline       the detector's pipeline vs the original project's flow (make bench)
    python -m bench.server_load    the server under a load of many clients
"""
