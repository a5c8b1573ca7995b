"""Start the cinescene web app: ``python app.py [--model M] [--host 127.0.0.1] [--port 7860]``.

Every flag can also come from the environment (``CINESCENE_MODEL``, ``CINESCENE_MEMORY``, ...),
which is how a Hugging Face Space is configured. On a Space, a non-loopback ``--host`` or a share
link, the engine flags (memory, fp8, attention, compile, VAE tiling) are fixed for every visitor.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cinescene.cli.common import add_model_args, model_spec
from cinescene.environment import quiet_libraries
from cinescene.errors import CinesceneError
from cinescene.settings import METRIC_WEIGHTS

ENV_PREFIX = "CINESCENE_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"{ENV_PREFIX}{name}", default)


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = argparse.ArgumentParser(description=__doc__)
    try:
        add_model_args(parser, env_prefix=ENV_PREFIX)  # the same model flags as the CLI, defaults from CINESCENE_*
    except CinesceneError as err:  # a CINESCENE_* variable that does not parse
        print(f"error: {err}", file=sys.stderr)
        return 2
    # Spaces set GRADIO_SERVER_NAME=0.0.0.0; everywhere else the app stays on loopback unless told.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="bind address; 0.0.0.0 exposes the app to your network")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="open a public gradio.live link (off by default)")
    parser.add_argument("--outputs", default=_env("OUTPUTS", "outputs"), help="folder for generated files")
    parser.add_argument("--loras", default=_env("LORAS", "loras"), help="adapter library")
    parser.add_argument("--datasets", default=_env("DATASETS", "datasets"), help="training datasets folder")
    parser.add_argument("--runs", default=_env("RUNS", "runs"), help="training runs folder")
    parser.add_argument("--max-upload", default=_env("MAX_UPLOAD"),
                        help="largest accepted upload, e.g. 500mb (default: 2gb locally, 200mb on a Space)")
    parser.add_argument("--metric-weights", choices=METRIC_WEIGHTS,
                        default=_env("METRIC_WEIGHTS"),
                        help="CLIP/LPIPS weights for Compare (default: pretrained; random on the tiny model)")
    parser.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                        default=[_env("AUTH")] if _env("AUTH") else None,
                        help="ask for this login before anything (repeat for several; or CINESCENE_AUTH, which keeps "
                             "the password out of the process list)")
    parser.add_argument("--zero-gpu-max-seconds", type=int, default=_env("ZERO_GPU_MAX_SECONDS"),
                        help="on ZeroGPU: the longest GPU call allowed (default 300, Hugging Face's current limit)")
    parser.add_argument("--zero-gpu-tflops", type=float, default=_env("ZERO_GPU_TFLOPS"),
                        help="on ZeroGPU: the sustained TFLOP/s the duration estimate assumes (default 500)")
    args = parser.parse_args(argv)

    import dataclasses

    from cinescene import adapters, deploy, loading, metrics, outputs, ui
    from cinescene.metrics import MetricsConfig
    from cinescene.settings import TINY_MODELS, TOY

    try:
        spec = model_spec(args)
        auth = deploy.parse_auth(args.auth or [])
        deployment = deploy.detect()
    except CinesceneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = spec.model
    limits = deploy.limits_for(deployment, tiny=model in (*TINY_MODELS, TOY))
    if limits.zero_gpu is not None:
        tuned = {"max_seconds": args.zero_gpu_max_seconds, "tflops": args.zero_gpu_tflops}
        limits = dataclasses.replace(limits, zero_gpu=dataclasses.replace(
            limits.zero_gpu, **{k: v for k, v in tuned.items() if v is not None}))
    fixed = deploy.engine_fixed(deployment, args.host, args.share)
    outputs_root = Path(args.outputs)
    try:
        outputs_root.mkdir(parents=True, exist_ok=True)
        # Load before serving: a wrong --model fails here, in one line, not on the first click.
        loaded = loading.get_model(spec)
    except (CinesceneError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"note: model preset {loaded.preset.name} ({loaded.preset.source}); engine "
          f"{deploy.describe_engine(spec)}" + (", fixed for every visitor" if fixed else ""), file=sys.stderr)
    outputs.Janitor(outputs_root, limits.outputs_max_age_hours, limits.outputs_max_bytes).start()
    context = ui.AppContext(
        spec=spec, outputs_root=outputs_root, library=adapters.AdapterLibrary(args.loras),
        metrics=MetricsConfig(weights=metrics.weights_for(model, args.metric_weights)),
        banner=ui.model_banner(model, auto_chosen=args.model is None),
        datasets_root=Path(args.datasets), runs_root=Path(args.runs), limits=limits, engine_fixed=fixed,
    )
    demo = ui.build_app(context)
    try:
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth or None,
                    max_file_size=args.max_upload or limits.max_upload,
                    allowed_paths=[str(outputs_root.resolve()), str(Path(args.runs).resolve())], show_error=True)
    except OSError as err:  # port taken, address not available
        print(f"error: could not start the server on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
