"""The benchmark command: `python -m bench`.

It starts a static upstream, a bare Django pass-through (the floor) and the gateway, drives the same
requests at all three, and reports what the gateway costs on top of the floor and of the upstream.
With ``--scale`` it also measures a gateway whose tables grow (10 vs 100,000 keys, 5 vs 1,000
deployments) and the spend dashboard over millions of ledger rows on PostgreSQL.
"""
