"""Reliability and security suite (issue #10): kills, faults, bad inputs, concurrency and secrets.

See docs/reliability.md for the guarantee each test proves.
"""
