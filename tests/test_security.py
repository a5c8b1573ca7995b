"""One test per security rule: safetensors only, sanitised names, safe archives, loopback, no share, no shell."""

from __future__ import annotations

import ast
import pickle
import zipfile

import psutil
import pytest

from cinescene import cli, loading, media, sampler
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.names import check_plain_name, from_filename
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings
from cinescene.training import archive
from cinescene.training import config as train_config

import lora_fixtures as lf
from conftest import ROOT, make_still


class Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_only_safetensors_are_read_even_inside_the_library(tmp_path, still):
    """A stored adapter swapped for a pickle is refused by its sidecar hash before anything parses it."""
    tr = loading.build_tiny_pipeline().transformer
    library = AdapterLibrary(tmp_path / "loras")
    info = library.import_file(lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE)), tmp_path / "a.safetensors"),
                               "style", name="look", base_model="tiny", transformer=tr)
    marker = tmp_path / "pwned"
    info.path.write_bytes(pickle.dumps(Boom(marker)))
    settings = SampleSettings(prompt="x", steps=1, frames=1, height=32, width=32, preset="preview",
                              adapters=(AdapterChoice("style", "look"),))
    with pytest.raises(InputError, match="does not match its sidecar"):
        sampler.sample(loading.load_model(ModelSpec(model="tiny")), media.load_image(still), settings,
                       library=library)
    for suffix in (".bin", ".pt", ".ckpt", ".pth"):
        evil = tmp_path / f"evil{suffix}"
        evil.write_bytes(pickle.dumps(Boom(marker)))
        with pytest.raises(InputError, match="pickle"):
            library.import_file(evil, "style", base_model="tiny", transformer=tr)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".hidden", "x\x00y", "con", "", "a" * 65, "-lead"])
def test_user_given_names_are_sanitised(name):
    with pytest.raises(InputError):
        check_plain_name(name, "thing")
    with pytest.raises(InputError):
        train_config.build(data="d", name=name)  # run and adapter names
    assert "/" not in from_filename(name or "x", "x") and ".." not in from_filename(name or "x", "x")


@pytest.mark.parametrize("entry", ["/abs/path.txt", "../up.txt", "C:\\win.txt", "link"])
def test_archives_cannot_escape_or_link(tmp_path, entry):
    import stat

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        if entry == "link":
            info = zipfile.ZipInfo("link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(entry, "x")
    with pytest.raises(InputError):
        archive.extract_zip(tmp_path / "a.zip", tmp_path / "datasets")
    assert {p.name for p in tmp_path.rglob("*")} == {"a.zip", "datasets"} or not (tmp_path / "datasets").exists()


def test_app_listens_on_loopback_only_and_opens_no_share_link(app_server):
    listening = [c for c in psutil.Process(app_server.proc.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(c.laddr.ip in ("127.0.0.1", "::1") for c in listening)
    log = app_server.log.read_text()
    assert "gradio.live" not in log and "public URL" not in log.lower()


def test_no_shell_anywhere_in_the_code():
    """Static: no shell=True, os.system, os.popen or string commands in cinescene or app.py."""
    offenders = []
    for path in [*sorted((ROOT / "cinescene").rglob("*.py")), ROOT / "app.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                    offenders.append(f"{path.name}: {name}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        offenders.append(f"{path.name}: shell=")
                if name.startswith("subprocess.") and node.args and isinstance(node.args[0], (ast.Constant,
                                                                                              ast.JoinedStr)):
                    offenders.append(f"{path.name}: {name} with a string command")
    assert not offenders


def test_hostile_file_names_stay_file_names(tmp_path, capsys):
    """Shell metacharacters in paths reach ffmpeg and the filesystem as plain names, never a shell."""
    folder = tmp_path / "$(touch pwned); `touch pwned2`"
    folder.mkdir()
    image = make_still(folder / "a;touch pwned3.png")
    out = folder / "out $(id).mp4"
    assert cli.main(["sample", "--model", "tiny", "--steps", "1", "--frames", "5", "--height", "32", "--width", "32",
                     "--image", str(image), "--prompt", "x", "--out", str(out), "--quiet"]) == 0
    assert media.read_video(out).num_frames == 5
    assert not any(p.name.startswith("pwned") for p in ROOT.iterdir()) and not list(tmp_path.rglob("pwned*"))
