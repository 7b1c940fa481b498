"""Models of the llm_gateway app: teams, memberships, virtual keys and deployments (none yet)."""
