"""Shared by the account unit and integration tests.

pytest puts the folder of this (package-less) conftest on sys.path, so tests in unit/ and
integration/ both import `account_fakes` from here (as services/ingest/tests does with its
testkit).
"""
