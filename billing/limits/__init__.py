"""Budgets and rate limits, checked and held in one step before the upstream call, settled after.

``admit(plan)`` checks every limit a request touches (RPM, TPM, parallel requests for key, user, team,
end user and deployment; hard budgets for key, user, team, end user and model-per-key) and, only if
all pass, counts the request and holds its worst-case cost on every budget, atomically: one Lua
script in Redis (shared by every instance) or one uninterrupted step in process (the embedded mode).
``settle(admission, cost, tokens)`` replaces the hold with the actual cost and releases the parallel
slots. Concurrent requests can therefore never take spend past a hard budget.
"""
