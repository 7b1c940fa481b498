"""The benchmark command: `python -m bench`.

It starts a static upstream, a bare Django pass-through (the floor) and the gateway, drives the same
requests at all three, and reports what the gateway costs on top of the floor and of the upstream.
"""
