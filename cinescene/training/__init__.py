"""Training: a folder of captioned clips and stills in, style and motion LoRAs (or a fine-tuned transformer) out.

``dataset`` checks every file, ``latent_cache`` encodes once, ``objective`` is
Wan's flow matching, ``trainer`` runs the stages (with ``trainable`` setting up
what a stage trains, ``checkpoints``, ``held_out`` validation, the JSONL ``log``,
``weights`` and ``publish`` for what it writes), ``config`` holds the settings,
``runs`` starts a trainer for the app and ``archive`` unpacks uploaded datasets.
"""
