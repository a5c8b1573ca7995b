"""One shot split over CPU processes (gloo) under torchrun; launched by test_context_parallel.

Each process first saves the float frames the pipeline returns for the shot (before cinescene rounds them
to uint8: the numbers the tolerance is about) and the adapter slots it holds, then runs ``cinescene sample``
with the same arguments on the same loaded engine, as ``torchrun -m cinescene sample`` does.
argv: FRAMES_DIR, then the sample arguments.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from cinescene import cli, experts, loading, media, sampler
from cinescene.cli.common import model_spec, sample_settings

folder, argv = Path(sys.argv[1]), ["sample", *sys.argv[2:]]
args = cli.build_parser().parse_args(argv)
spec = model_spec(args)
model = loading.get_model(spec)  # cached: the command below runs on this engine
image = media.load_image(args.image)
settings = sampler.resolve_settings(sample_settings(args, spec), image.size)
sampler.apply_shift(model.pipe, float(settings.shift))
with torch.no_grad():
    frames = model.pipe(**sampler.pipeline_kwargs(model, image, settings)).frames[0]
np.save(folder / f"rank{model.parallel.rank}.npy", frames)
(folder / f"rank{model.parallel.rank}.slots").write_text(" ".join(model.slots.ready))
split = [name for name, module in experts.experts(model.pipe).items() if module._parallel_config is not None]
(folder / f"rank{model.parallel.rank}.split").write_text(" ".join(split))
sys.exit(cli.main(argv))
