"""Builders of tiny random-weight models in the Hugging Face repo layout, and a loopback Hub for tests."""
