"""Restricted-C BPF programs and their committed, compiled objects."""
