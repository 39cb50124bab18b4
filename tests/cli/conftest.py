"""CLI tests run the real commands against the lab fleet (the same fixtures as tests/integration)."""

from tests.integration.conftest import default_lab, lab

__all__ = ["default_lab", "lab"]
