"""Request and response serializers of the management API, one module per resource."""
