"""The toy world: procedural footage with known looks and camera moves, and a small Wan trained on it.

``footage`` renders scenes under any look and camera move (and writes datasets
the trainer reads); the trained model itself ships in ``model/`` (a diffusers
folder made by ``scripts/train_toy_model.py``) and loads as ``--model toy``.
"""
