import os
import subprocess
import sys

CODE = """
import numba, torch
from concurrent.futures import ThreadPoolExecutor
from inversa.tomography import Radon2D
op = Radon2D(image_shape=(48, 48), angles=torch.arange(60.0))
x = torch.rand(6, 48, 48, generator=torch.Generator().manual_seed(0))
ref = [op.forward(x[i]) for i in range(6)]
with ThreadPoolExecutor(4) as pool:
    outs = list(pool.map(lambda i: op.forward(x[i % 6]), range(32)))
assert numba.threading_layer() == "workqueue", numba.threading_layer()
assert all(torch.equal(o, ref[i % 6]) for i, o in enumerate(outs))
print("concurrent-ok")
"""


def test_concurrent_launches_survive_numbas_workqueue_layer():
    # Dask's threaded scheduler calls the kernels from several threads; numba's fallback
    # threading layer aborts the whole process on concurrent launches unless serialised.
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    run = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "concurrent-ok" in run.stdout


USER_THREADS = """
import torch
from inversa.tomography import Radon2D
op = Radon2D(image_shape=(16, 16), angles=torch.arange(0.0, 180.0, 30.0, dtype=torch.float64))
op.adjoint(op.forward(torch.rand(16, 16, dtype=torch.float64)))
op.adjoint(op.forward(torch.rand(4, 16, 16, dtype=torch.float64)))
print(torch.get_num_threads())
"""


def test_numba_kernels_keep_the_users_thread_count():
    # numba's OpenMP layer shares libgomp with torch; a kernel run with numba's default
    # count (all cores) used to override OMP_NUM_THREADS=1 for every later torch op.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    run = subprocess.run(
        [sys.executable, "-c", USER_THREADS], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "1"
