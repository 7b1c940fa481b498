"""Services of the llm_gateway app: the functions that write."""
