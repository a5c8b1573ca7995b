"""cinescene: teach Wan2.1 image-to-video your film's look, and measure it.

The package is the product; ``app.py`` (Gradio) and ``python -m cinescene``
(CLI) are thin shells over it. Nothing heavy is imported or loaded here.
"""

__version__ = "0.1.0"
