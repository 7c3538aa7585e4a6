"""workflow-kernel's own tests."""
