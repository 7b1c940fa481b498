"""The gateway's admin (django-unfold): teams, memberships, virtual keys, deployments, end users.

Who sees what:

- Superusers (and staff users given Django's model permissions) manage everything.
- A **team admin** is a staff user with an admin membership (``Membership.Role.ADMIN``) in one or
  more teams. They need ``is_staff=True`` to log in and no model permission at all: the hooks in
  ``team_scope`` grant them their own teams' keys (create, edit, block, regenerate, delete) and their
  teams (view, and edit the memberships; the budget and limits stay the operator's). Another team's
  key or team answers 404, and deployments, end users and users are not theirs to see.
- Other members (role member or viewer) see none of the gateway's models.

A key's secret is shown once, in the message after it is created or regenerated; a deployment's
credential is write-only.
"""

from llm_gateway.admin import deployments, end_users, gateway_settings, keys, teams, users

__all__ = ["deployments", "end_users", "gateway_settings", "keys", "teams", "users"]
