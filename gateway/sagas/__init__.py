"""Sagas run by the gateway: goal changes that span the user and activity services."""
