"""The Adapters tab: list, import and remove style and motion LoRAs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..adapters import KINDS, MAX_DESCRIPTION_CHARS, check_kind
from ..errors import CinesceneError
from .common import GPU_QUEUE, AppContext, adapter_dropdown_choices, user_error

TABLE_HEADERS = ["name", "kind", "rank", "targets", "blocks", "size (MB)", "hot-swap", "base model", "description"]


def adapter_table(ctx: AppContext) -> list[list[Any]]:
    rows = []
    for i in ctx.library.list():
        rows.append([i.name, i.kind, i.rank, ", ".join(i.target_modules), i.blocks,
                     round(i.size_bytes / 2**20, 2), "yes" if i.hotswap else f"no: {i.hotswap_note}",
                     i.base_model, i.description])
    return rows


def import_adapter(ctx: AppContext, file: str | None, kind: str, name: str, description: str,
                   strength: float, drop_full_deltas: bool = False) -> str:
    try:
        if not file:
            raise CinesceneError("no file: choose a .safetensors LoRA to import")
        check_kind(kind)  # before the model load
        model = ctx.model()
        source = Path(file)
        info = ctx.library.import_file(
            source, kind, name=(name or "").strip() or None, base_model=model.model_id,
            transformer=model.pipe.transformer, description=description or "", default_strength=float(strength),
            drop_full_deltas=bool(drop_full_deltas),
        )
    except CinesceneError as err:
        raise user_error(err) from None
    note = "hot-swappable" if info.hotswap else f"slower, non-hot-swap load: {info.hotswap_note}"
    dropped = (f" Left out on request: {len(info.dropped_full_deltas)} full deltas (listed in its sidecar)."
               if info.dropped_full_deltas else "")
    return (f"Imported **{info.name}** ({info.kind}, rank {info.rank}, from {info.source_format} layout): "
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
                "Adapters that fit their slot switch in place in milliseconds; others load more slowly.")
    table = gr.Dataframe(value=adapter_table(ctx), headers=TABLE_HEADERS, interactive=False, elem_id="ad-table",
                         wrap=True)
    status = gr.Markdown(elem_id="ad-status")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Import")
            file = gr.File(label="LoRA (.safetensors: diffusers, peft, ComfyUI, musubi, DiffSynth)",
                           file_types=[".safetensors"], type="filepath", elem_id="ad-file")
            kind = gr.Radio(list(KINDS), value="style", label="Kind", elem_id="ad-kind")
            name = gr.Textbox(label="Name (empty: from the file name)", max_length=64, elem_id="ad-name")
            description = gr.Textbox(label="Description", max_length=MAX_DESCRIPTION_CHARS)
            strength = gr.Number(value=1.0, label="Default strength")
            # The CLI's --drop-full-deltas: deltas of norms and modulation no LoRA can carry are refused by name
            # unless the user accepts leaving them out.
            drop = gr.Checkbox(False, label="Leave out full deltas a LoRA cannot hold (norms, modulation)",
                               elem_id="ad-drop-deltas")
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

    def _import(file, kind, name, description, strength, drop_full_deltas=False):
        return import_adapter(ctx, file, kind, name, description, strength, drop_full_deltas)

    def _refresh_and_clear() -> tuple[Any, ...]:
        return (*_refresh(), None, "", "")

    do_import.click(_import, inputs=[file, kind, name, description, strength, drop], outputs=status,
                    api_name="import_adapter", concurrency_id=GPU_QUEUE).success(
        _refresh_and_clear, outputs=[*refreshed, file, name, description], api_name="refresh_after_import")

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
