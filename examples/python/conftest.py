# makes the project root importable for `pytest tests/`
