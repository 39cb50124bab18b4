from tests.sweep.conftest import lab, sweep_lab

__all__ = ["lab", "sweep_lab"]
