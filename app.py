"""Start the cinescene web app: ``python app.py [--model M] [--host 127.0.0.1] [--port 7860]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cinescene.cli import quiet_libraries


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None,
                        help="hub id, local diffusers folder or 'tiny' (default: 480P on a GPU, tiny without one)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address; 0.0.0.0 exposes the app to your network")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="open a public gradio.live link (off by default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory", default="none", help="none, model-offload or group-offload")
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--outputs", default=None, help="folder for generated files (default: ./outputs)")
    parser.add_argument("--loras", default=None, help="adapter library (default: ./loras)")
    parser.add_argument("--datasets", default="datasets", help="training datasets folder (default: ./datasets)")
    parser.add_argument("--runs", default="runs", help="training runs folder (default: ./runs)")
    parser.add_argument("--metric-weights", choices=("pretrained", "fallback", "random"), default=None,
                        help="CLIP/LPIPS weights for Compare (default: pretrained; random on the tiny model)")
    args = parser.parse_args(argv)

    from cinescene import adapters, loading, outputs, ui
    from cinescene.config import TINY, ModelSpec
    from cinescene.errors import CinesceneError
    from cinescene.metrics import MetricsConfig

    model = args.model or loading.auto_model()
    spec = ModelSpec(model=model, device=args.device, memory=args.memory, vae_tiling=args.vae_tiling)
    banner = ui.tiny_banner(auto_chosen=args.model is None) if model == TINY else None
    outputs_root = Path(args.outputs) if args.outputs else outputs.DEFAULT_OUTPUTS
    try:
        outputs_root.mkdir(parents=True, exist_ok=True)
        # Load before serving: a wrong --model fails here, in one line, not on the first click.
        loading.get_model(spec)
    except (CinesceneError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    library = adapters.AdapterLibrary(args.loras or adapters.DEFAULT_LIBRARY)
    # The tiny model's pictures are noise: scoring them with downloaded CLIP/LPIPS weights buys nothing.
    metric_weights = args.metric_weights or ("random" if model == TINY else "pretrained")
    demo = ui.build_app(ui.AppContext(spec=spec, outputs_root=outputs_root, library=library,
                                      metrics=MetricsConfig(weights=metric_weights), banner=banner,
                                      datasets_root=Path(args.datasets), runs_root=Path(args.runs)))
    try:
        demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                    allowed_paths=[str(outputs_root.resolve()), str(Path(args.runs).resolve())], show_error=True)
    except OSError as err:  # port taken, address not available
        print(f"error: could not start the server on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
