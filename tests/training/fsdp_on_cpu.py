"""``cinescene train`` under accelerate's FSDP on CPU processes (gloo); launched by test_trainer_fsdp.

accelerate switches FSDP on only for accelerator devices, though torch's FSDP2 shards, gathers and saves on
CPU with gloo as well. This launcher marks the CPU processes as GPU-like before anything builds an
Accelerator, so accelerate reads the FSDP settings from ``accelerate launch --config_file`` as on GPUs, and
the trainer's own FSDP path (sharding, sharded checkpoints, the full-state gather at save) runs here.
"""

import sys

from accelerate.state import PartialState
from accelerate.utils import DistributedType

state = PartialState(cpu=True)
assert state.distributed_type == DistributedType.MULTI_CPU, state.distributed_type
state.distributed_type = DistributedType.MULTI_GPU  # what AcceleratorState checks before turning FSDP on

from cinescene.cli import main  # noqa: E402

sys.exit(main(["train", *sys.argv[1:]]))
