"""The dashboard's endpoints, one module per concern: pages, the live stream, actions."""
