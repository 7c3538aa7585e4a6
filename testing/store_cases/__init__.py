"""The cases of the store conformance suite, grouped by concern.

Users subclass ``testing.conformance.StoreConformance``, which combines them.
"""
