"""Helpers for the demo apps (android_demo, web_demo): golden vectors shared by their tests."""
