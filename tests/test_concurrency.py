"""Eight users at once, each with their own adapters and seed: each gets exactly what it would alone."""

from __future__ import annotations

import itertools

import numpy as np
from test_ui import GEN_DEFAULTS

from cinescene import loading, media

import lora_fixtures as lf


def test_eight_simultaneous_requests_match_their_solo_runs(app_client, still, tmp_path):
    from gradio_client import Client, handle_file

    tr = loading.build_tiny_pipeline().transformer
    for name, suffixes, kind, seed in (("cc-look-a", lf.STYLE, "style", 51), ("cc-look-b", lf.STYLE, "style", 52),
                                       ("cc-move-a", lf.MOTION, "motion", 53), ("cc-move-b", lf.MOTION, "motion", 54)):
        path = lf.save(lf.diffusers_layout(lf.random_lora(tr, suffixes, seed=seed)), tmp_path / f"{name}.safetensors")
        app_client.predict(file=handle_file(str(path)), kind=kind, name=name, description="", strength=1.0,
                           api_name="/import_adapter")
    combos = list(itertools.product(["none", "cc-look-a", "cc-look-b", "cc-look-a"], ["cc-move-a", "cc-move-b"]))
    requests = [dict(GEN_DEFAULTS, style=style, motion=motion, seed=100 + i, style_strength=0.5 + 0.25 * (i % 3))
                for i, (style, motion) in enumerate(combos)]
    assert len(requests) == 8
    # Eight clients, as eight browsers would be: each its own session.
    clients = [Client(app_client.src, verbose=False) for _ in requests]
    jobs = [c.submit(image=handle_file(str(still)), **r, api_name="/generate") for c, r in zip(clients, requests)]
    together = [job.result(timeout=300) for job in jobs]
    assert len({video for video, _ in together}) == 8  # eight distinct files, none shared or overwritten
    for request, (video, record) in zip(requests, together):
        assert record["settings"]["seed"] == request["seed"]
        names = {a["slot"]: a["name"] for a in record["adapters"]}
        assert names.get("style", "none") == request["style"] and names["motion"] == request["motion"]
        alone_video, _ = app_client.predict(image=handle_file(str(still)), **request, api_name="/generate")
        assert np.array_equal(media.read_video(video).frames, media.read_video(alone_video).frames)
