"""The spend dashboard in the admin, at /admin/billing/spend/.

Finance (superusers, and staff holding ``billing.view_spendrollup``) sees every team; a team admin
(a staff user with an admin membership) sees only the teams they administer. Figures come from the
daily rollups; p50/p95 latency from a bounded sample of the ledger (``billing.selectors``). Every
table exports as CSV: ``?format=csv&table=by_team`` with the page's filters.
"""
