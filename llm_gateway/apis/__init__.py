"""HTTP views of the llm_gateway app, one module per resource."""
