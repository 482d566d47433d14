import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: two torch threads fighting other jobs run 30x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
