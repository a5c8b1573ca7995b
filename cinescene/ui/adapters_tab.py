"""The Adapters tab: list, import (single files and Wan2.2 pairs) and remove style and motion LoRAs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gradio as gr

from ..adapters import KINDS, MAX_DESCRIPTION_CHARS, AdapterInfo, check_kind
from ..errors import CinesceneError
from .common import GPU_QUEUE, AppContext, adapter_dropdown_choices, user_error

TABLE_HEADERS = ["name", "kind", "rank", "targets", "blocks", "size (MB)", "hot-swap", "base model", "description",
                 "placement"]
# The sidecar's placement field is the one definition; the form's control takes its label, help and choices.
PLACEMENT = next(f for f in dataclasses.fields(AdapterInfo) if f.name == "placement")
DEFAULT_PLACEMENT = ""  # the kind's default, or the expert a file's name marks


def adapter_table(ctx: AppContext) -> list[list[Any]]:
    rows = []
    for i in ctx.library.list():
        rows.append([i.name, i.kind, i.rank, ", ".join(i.target_modules), i.blocks,
                     round(i.size_bytes / 2**20, 2), "yes" if i.hotswap else f"no: {i.hotswap_note}",
                     i.base_model, i.description, f"pair, {i.placement}" if i.is_pair else i.placement])
    return rows


def import_adapter(ctx: AppContext, file: str | None, kind: str, name: str, description: str,
                   strength: float, drop_full_deltas: bool = False, low_noise_file: str | None = None,
                   placement: str = DEFAULT_PLACEMENT) -> str:
    """Import one file, or a Wan2.2 pair when ``low_noise_file`` is given (``file`` is then the high-noise half)."""
    try:
        if not file:
            raise CinesceneError("no file: choose a .safetensors LoRA to import")
        check_kind(kind)  # before the model load
        model = ctx.model()
        options = dict(name=(name or "").strip() or None, base_model=model.model_id,
                       transformer=model.pipe.transformer, description=description or "",
                       default_strength=float(strength), drop_full_deltas=bool(drop_full_deltas),
                       placement=placement or None)
        if low_noise_file:
            if not model.two_experts:
                raise CinesceneError(f"a pair is for a two-expert model (Wan2.2 I2V A14B); {model.model_id} has "
                                     "one transformer: import one file")
            info = ctx.library.import_pair(Path(file), Path(low_noise_file), kind,
                                           transformer_2=model.pipe.transformer_2, **options)
        else:
            info = ctx.library.import_file(Path(file), kind, **options)
    except CinesceneError as err:
        raise user_error(err) from None
    note = "hot-swappable" if info.hotswap else f"slower, non-hot-swap load: {info.hotswap_note}"
    dropped = (f" Left out on request: {len(info.dropped_full_deltas)} full deltas (listed in its sidecar)."
               if info.dropped_full_deltas else "")
    what = f"a pair placed on {info.placement}, " if info.is_pair else ""
    return (f"Imported **{info.name}** ({info.kind}, {what}rank {info.rank}, from {info.source_format} layout): "
            f"{note}.{dropped}")


def remove_adapter(ctx: AppContext, name: str | None) -> str:
    try:
        if not name:
            raise CinesceneError("choose an adapter to remove")
        info = ctx.library.remove(name)
    except CinesceneError as err:
        raise user_error(err) from None
    return f"Removed {info.kind} adapter **{info.name}**."


def adapters_tab(ctx: AppContext, dropdowns: list[tuple[str, gr.Dropdown]]) -> tuple[Any, list[Any]]:
    """Build the tab; ``dropdowns`` are (kind, adapter dropdown) pairs on other tabs to refresh after changes.

    Returns the refresh function and its outputs, for the app's page-load event.
    """
    gr.Markdown("Style adapters carry a look (cross-attention), motion adapters carry movement (self-attention). "
                "Adapters that fit their slot switch in place in milliseconds; others load more slowly. On Wan2.2 "
                "A14B, a pair (a high-noise and a low-noise file) is one adapter, and placement says which of the "
                "two experts an adapter acts on.")
    table = gr.Dataframe(value=adapter_table(ctx), headers=TABLE_HEADERS, interactive=False, elem_id="ad-table",
                         wrap=True)
    status = gr.Markdown(elem_id="ad-status")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Import")
            file = gr.File(label="LoRA (.safetensors: diffusers, peft, ComfyUI, musubi, DiffSynth); for a Wan2.2 "
                                 "pair, its high-noise half", file_types=[".safetensors"], type="filepath",
                           elem_id="ad-file")
            file_low = gr.File(label="Wan2.2 pair only: its low-noise half", file_types=[".safetensors"],
                               type="filepath", elem_id="ad-file-low")
            kind = gr.Radio(list(KINDS), value="style", label="Kind", elem_id="ad-kind")
            name = gr.Textbox(label="Name (empty: from the file name)", max_length=64, elem_id="ad-name")
            description = gr.Textbox(label="Description", max_length=MAX_DESCRIPTION_CHARS)
            strength = gr.Number(value=1.0, label="Default strength")
            # The CLI's --drop-full-deltas: deltas of norms and modulation no LoRA can carry are refused by name
            # unless the user accepts leaving them out.
            drop = gr.Checkbox(False, label="Leave out full deltas a LoRA cannot hold (norms, modulation)",
                               elem_id="ad-drop-deltas")
            placement = gr.Radio([("default", DEFAULT_PLACEMENT), *PLACEMENT.metadata["choices"]],
                                 value=DEFAULT_PLACEMENT, label=PLACEMENT.metadata["label"],
                                 info=PLACEMENT.metadata["help"], elem_id="ad-placement")
            do_import = gr.Button("Import", variant="primary", elem_id="ad-import")
        with gr.Column():
            gr.Markdown("### Remove")
            victim = gr.Dropdown([i.name for i in ctx.library.list()], label="Adapter", elem_id="ad-victim")
            ask = gr.Button("Remove…", elem_id="ad-remove")
            with gr.Group(visible=False) as confirm:
                question = gr.Markdown()
                with gr.Row():
                    yes = gr.Button("Yes, delete it", variant="stop", elem_id="ad-remove-yes")
                    no = gr.Button("Cancel")
            refresh = gr.Button("Refresh list")

    def _refresh() -> tuple[Any, ...]:
        return (
            adapter_table(ctx),
            *[gr.update(choices=adapter_dropdown_choices(ctx, kind)) for kind, _ in dropdowns],
            gr.update(choices=[i.name for i in ctx.library.list()], value=None),
        )

    refreshed = [table, *[dropdown for _, dropdown in dropdowns], victim]

    def _import(file, kind, name, description, strength, drop_full_deltas=False, low_noise_file=None,
                placement=DEFAULT_PLACEMENT):
        return import_adapter(ctx, file, kind, name, description, strength, drop_full_deltas, low_noise_file,
                              placement)

    def _refresh_and_clear() -> tuple[Any, ...]:
        return (*_refresh(), None, None, "", "")

    do_import.click(_import, inputs=[file, kind, name, description, strength, drop, file_low, placement],
                    outputs=status, api_name="import_adapter", concurrency_id=GPU_QUEUE).success(
        _refresh_and_clear, outputs=[*refreshed, file, file_low, name, description], api_name="refresh_after_import")

    def _ask(name):
        if not name:
            raise gr.Error("choose an adapter to remove", print_exception=False)
        return gr.update(visible=True), f"Delete **{name}** and its sidecar for good?"

    ask.click(_ask, inputs=victim, outputs=[confirm, question], api_name="ask_remove", queue=False)
    no.click(lambda: gr.update(visible=False), outputs=confirm, api_name="cancel_remove", queue=False)

    def _remove(name):
        return remove_adapter(ctx, name), gr.update(visible=False)

    yes.click(_remove, inputs=victim, outputs=[status, confirm], api_name="remove_adapter",
              concurrency_id=GPU_QUEUE).success(_refresh, outputs=refreshed, api_name="refresh_after_remove")
    refresh.click(_refresh, outputs=refreshed, api_name="list_adapters", queue=False)
    return _refresh, refreshed
