"""Shared fixtures: offline guard, the tiny pipeline (built once), small stills."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

# Before anything imports huggingface_hub/diffusers/gradio.
os.environ["HF_HUB_OFFLINE"] = "1"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share two cores: one thread each, or torch's and OpenBLAS's pools fight over them.
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_threads] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

import netguard  # noqa: E402

netguard.install()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# On two workers the run ends when its last file does: the slowest files go first (durations measured on CI's
# two cores; ``scripts/test.sh`` keeps this order with --no-loadscope-reorder), so none is left to run alone.
SLOW_FIRST = ("toy/test_learning.py", "test_faults.py", "toy/test_base_model.py", "study/test_documented.py",
              "test_browser.py", "training/test_trainer.py", "study/test_runner.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0].removeprefix("tests/")
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within each file, and of the other files, is kept


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_blocked_network: the test provokes a blocked connection on purpose")


@pytest.fixture(scope="session")
def netguard_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("netguard") / "attempts.log"
    log.touch()
    os.environ[netguard.LOG_ENV] = str(log)
    return log


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, netguard_log: Path) -> Iterator[None]:
    """Fail any test during which something (here or in a subprocess) tried to leave the machine."""
    before_local = len(netguard.attempts)
    before_log = netguard_log.read_text()
    yield
    if request.node.get_closest_marker("allow_blocked_network"):
        return
    new = netguard.attempts[before_local:] + netguard_log.read_text()[len(before_log):].splitlines()
    assert not new, f"the test tried to reach the network: {new}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: offline, and the network guard loaded through sitecustomize."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "netguard_site"), str(ROOT)])
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def tiny_model():  # type: ignore[no-untyped-def]
    """The tiny pipeline, built once per test run and shared (it is also loading's cached model)."""
    from cinescene import loading
    from cinescene.settings import ModelSpec

    return loading.get_model(ModelSpec(model="tiny"))


def make_still(path: Path, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width, yy / height, 0.5 + 0.0 * xx], axis=-1) * 200
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def still(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_still(tmp_path_factory.mktemp("stills") / "still.png")


@pytest.fixture
def small_settings():  # type: ignore[no-untyped-def]
    """Settings that make the tiny model answer in well under a second."""
    from cinescene.settings import SampleSettings

    return SampleSettings(prompt="a slow dolly-in on a lighthouse at dusk", steps=3, frames=5, height=32, width=48,
                          preset="preview")


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    """``python app.py`` in a subprocess, as a user starts it, on ``model`` (None: no --model, which is toy here)."""

    def __init__(self, outputs: Path, extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 model: str | None = "tiny"):
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.outputs = outputs
        self.loras = outputs.parent / "loras"
        self.datasets = outputs.parent / "datasets"
        self.runs = outputs.parent / "runs"
        self.log = outputs.parent / f"app-{self.port}.log"
        self._log_fh = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port), "--outputs", str(outputs), "--loras",
             str(self.loras), "--datasets", str(self.datasets), "--runs", str(self.runs),
             *(["--model", model] if model else []), *(extra_args or [])],
            cwd=ROOT, env=env or subprocess_env(), stdout=self._log_fh, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        import time
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as err:
                if err.code == 401:  # up, behind a login (--auth)
                    return
                time.sleep(0.5)
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"app did not answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
        self._log_fh.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, netguard_log: Path) -> Iterator[AppServer]:
    server = AppServer(tmp_path_factory.mktemp("app") / "outputs")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_client(app_server: AppServer):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="session")
def metric_nets():  # type: ignore[no-untyped-def]
    """CLIP and LPIPS with random weights (no weights can be downloaded here); numbers are uncalibrated."""
    from cinescene import metrics

    return metrics.get_networks(metrics.MetricsConfig(weights="random"))


@pytest.fixture(scope="session")
def i3d_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript file with StyleGAN-V's I3D calling convention: (B, 3, T, H, W) in [-1, 1] -> (B, 400)."""
    import torch

    class StandIn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.proj = torch.nn.Parameter(torch.randn(12, 400, generator=gen))

        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                    return_features: bool = True) -> torch.Tensor:
            # Channel means over four time quarters: motion-sensitive, like a (very) small I3D.
            quarters = torch.stack([q.mean(dim=(2, 3, 4)) for q in x.chunk(4, dim=2)], dim=1).flatten(1)
            return torch.tanh(quarters @ self.proj) * 10.0

    path = tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt"
    torch.jit.script(StandIn()).save(str(path))
    return path


@pytest.fixture(scope="session")
def inception_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript file with the calling convention of NVIDIA's inception-2015-12-05.pt (StyleGAN2-ADA's FID
    network): uint8 (B, 3, H, W) at any size; ``return_features=True`` -> (B, 2048) pool features, else
    (B, 1008) logits. It refuses anything else, so a caller that gets the convention wrong fails."""
    import torch

    class StandIn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(1)
            self.proj = torch.nn.Parameter(torch.randn(48, 2048, generator=gen) * 0.2)

        def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                    no_output_bias: bool = False) -> torch.Tensor:
            if img.dtype != torch.uint8 or img.dim() != 4 or img.shape[1] != 3:
                raise ValueError("expects uint8 images of shape (batch, 3, height, width)")
            # The real network resizes to 299 and scales to [-1, 1] itself; a 4 x 4 grid of colour means will do.
            x = (img.to(torch.float32) - 128.0) / 128.0
            grid = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
            features = torch.relu(grid @ self.proj)  # pool features are non-negative, as after Inception's ReLUs
            return features if return_features else features[:, :1008]

    path = tmp_path_factory.mktemp("inception") / "inception-2015-12-05.pt"
    torch.jit.script(StandIn()).save(str(path))
    return path


@pytest.fixture
def fresh_accelerate_state() -> Iterator[None]:
    """accelerate keeps one mixed-precision setting per process; a test that needs another resets it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)
