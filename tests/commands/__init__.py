"""One module per command (SPEC §5), run through ``create_test_kernel``."""
