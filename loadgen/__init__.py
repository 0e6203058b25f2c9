"""Idle-connection scaling load test for the offload engine."""
